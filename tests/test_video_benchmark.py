"""benchmarks/video.py: its measures on hand-made masks and tracks, its clips, and a smoke run."""
import json

import cv2
import numpy as np
import pytest

import video


def masks(*rows):
    return [np.array(row, bool) for row in rows]


def test_flicker_counts_label_changes_only_where_the_truth_stays():
    truth = masks([1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 0])
    predicted = masks([1, 0, 0, 1], [1, 1, 1, 1], [1, 1, 0, 1])
    # Frame 0 -> 1: pixel 1 changes where the truth stays (counted), pixel 2 where the truth changes (not).
    # Frame 1 -> 2: pixel 2 changes while the truth stays: counted. True face pixels of frames 1 and 2: 3 + 3.
    assert video.flicker(predicted, truth) == {"changed": 2, "face": 6}
    assert video.flicker(truth, truth) == {"changed": 0, "face": 6}


def test_face_frame_flicker_takes_the_faces_motion_out():
    truth = np.zeros((128, 128), bool)
    truth[32:96, 40:88] = True
    pictures = {"a": (None, truth)}
    frame_size = video.SHAPE[::-1]
    placements = [[("a", np.array([[1.5, 0, 100.0 + 6 * t], [0, 1.5, 80.0]]))] for t in range(3)]
    # The truth moved with the picture: its label changes in the frame, but never in the picture's own frame.
    moving = [cv2.warpAffine(truth.astype(np.uint8), transform, frame_size, flags=cv2.INTER_NEAREST) > 0
              for ((_, transform),) in placements]
    assert video.flicker(moving, moving)["changed"] == 0  # the true label changes where this mask does
    assert video.face_frame_flicker(moving, placements, pictures) == {"changed": 0, "face": 2 * truth.sum()}
    # A mask that stays where the face was first: in the face's frame it slides by 4 pixels a frame.
    still = [moving[0]] * 3
    counted = video.face_frame_flicker(still, placements, pictures)
    assert counted["changed"] == 2 * 2 * 4 * 64  # both edges of a 64-pixel-high box, 4 columns, two steps
    # A face partly out of the frame counts only its pixels inside both frames.
    out = [[("a", np.array([[1.5, 0, -96.0], [0, 1.5, 80.0]]))]] * 2
    assert video.face_frame_flicker([moving[0]] * 2, out, pictures)["face"] == truth[:, 64:].sum()


def test_overlap_pools_the_clip():
    truth = masks([1, 1, 0, 0], [0, 1, 1, 0])
    predicted = masks([1, 0, 0, 0], [0, 1, 1, 1])
    assert video.overlap(predicted, truth) == {"intersection": 3, "union": 5}


def test_refound_waits_from_the_return_until_a_face_is_on_the_picture():
    visible = [1.0, 1.0, 0.5, 0.0, 0.0, 0.4, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0]
    on = [[0], [0], [0], [], [], [], [], [None], [0, 1], [0], [], [1]]
    # Back fully at frame 6, a face on it at frame 8: 2 frames. Back again at 11, never found: None.
    assert video.refound(on, visible) == [2, None]
    assert video.refound([[0]] * 3, [1.0, 1.0, 1.0]) == []


def test_track_jumps_count_tracks_seen_on_two_pictures():
    found = [[(1, None), (2, None)], [(1, None), (2, None)], [(1, None)]]
    on = [[0, 1], [0, None], [1]]
    assert video.track_jumps(found, on) == 1
    assert video.track_jumps(found[:2], on[:2]) == 0


def test_the_leaving_picture_is_out_for_away_frames_and_comes_back():
    share = video.leaving_shape(150, 20)
    assert share[0] == 0 and share[-1] == 0 and np.count_nonzero(share == 1) >= 20
    assert np.all(np.abs(np.diff(share)) < 0.1)  # a smooth slide, not a jump


def test_a_clip_moves_its_pictures_in_and_out(real_data):
    names = json.loads((real_data.parent / "pretrained" / "split.json").read_text())["validation"][:6]
    pictures = {name: video.read_pair(real_data, name) for name in names}
    args = video.parse_args(["--frames", "150"])
    clip = video.make_clip(np.random.default_rng(0), pictures, names, 2, args)
    assert len(clip["frames"]) == 150 and clip["frames"][0].shape == (480, 640, 3)
    leaving, staying = clip["visible"][:, 0], clip["visible"][:, 1]
    assert leaving[0] > 0.98 and leaving.min() == 0 and leaving[-1] > 0.98
    assert staying.min() > 0.98
    assert all(truth.any() for truth in clip["truth"])


@pytest.mark.usefixtures("real_data")
def test_a_smoke_run_prints_consistent_figures(capsys):
    assert video.main(["--split", "validation", "--clips", "2", "--frames", "16", "--pictures", "6"]) == 0
    line, table = capsys.readouterr().out.split("\n", 1)
    result = json.loads(line)
    assert result["clips"] == 2 and len(result["per_clip"]) == 2
    for mode in video.MODES:
        assert 0 < result["face_iou"][mode] <= 1
        assert result["face_iou_ci95"][mode][0] <= result["face_iou"][mode] <= result["face_iou_ci95"][mode][1]
        assert result[mode]["frames_per_second"] > 0
        assert result["face_iou"][mode] == pytest.approx(np.mean([clip[mode] for clip in result["per_clip"]]), abs=1e-4)
    assert result["video"]["tracks"] >= 3 and result["video"]["track_jumps"] == 0
    assert len(result["targets"]) == 6 and "| frames/s, two-face clips (median, min-max over clips) |" in table
    two = result["video"]["clip_frames_per_second_two_faces"]
    assert two["min"] <= two["median"] <= two["max"] and two["min"] <= result["video"]["frames_per_second_two_faces"]


def test_speed_targets_count_only_when_the_slowest_clip_meets_them():
    def result(slowest):
        clips = {"median": 40.0, "min": slowest, "max": 45.0}
        return {"video": {"clip_frames_per_second_two_faces": clips, "refound_frames": [0], "track_jumps": 0,
                          "flicker": 0.06},
                "photo": {"flicker": 0.07}, "clip_speed_ratio": {"median": 3.5, "min": slowest / 10, "max": 4.0},
                "face_iou_ci95": {"video_minus_photo": [-0.01, 0.0]}, "settings": {"precision": "fp32"}}

    assert video.spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0} and video.spread([]) is None
    met = [target for target, ok in video.targets(result(31.0)).items() if ok and "frames/s" in target]
    assert len(met) == 2
    assert not any(ok for target, ok in video.targets(result(29.0)).items() if "frames/s" in target)


def test_bad_settings_are_refused(capsys):
    with pytest.raises(SystemExit):
        video.parse_args(["--frames", "3"])
    assert "--frames" in capsys.readouterr().err
