"""The face pipeline's video parts: tracking faces from frame to frame (tracking.py), smoothing their
landmarks over time (smoothing.py), reading and writing clips (video_files.py), the stream object
VideoSegmenter (video_segmenter.py) and the files infer.py writes for a clip (video_outputs.py)."""
