"""Faces in pictures and videos, for infer.py and the demo: finding them (face_detection.py), framing them
the way LFW frames its faces (face_alignment.py, face_template.py and its JSON, framing.py), the photos
read and the files written (photo_files.py, photo_outputs.py), and for videos tracking faces from frame
to frame (tracking.py, smoothing.py), the clips read (video_files.py), the stream object VideoSegmenter
(video_segmenter.py) and the files written for a clip (video_outputs.py)."""
