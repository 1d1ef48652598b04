"""Prepare the LFW part-labels face data as data{N}_{N}/ with inputs/, targets/, targets_face_only/.

The source is "LFW part labels" (http://vis-www.cs.umass.edu/lfw/part_labels/): funneled LFW photos
(250x250 RGB) and label images in which every pixel is hair, face (skin) or background. The network
learns binary masks, so the three classes are merged into two targets:

    targets            face+hair (255) vs background (0)
    targets_face_only  face (255) vs hair+background (0)

Every example is three JPEG files with the same name <Person_Name>_<NNNN>.jpg, one per folder: the
grayscale photo and the two masks (threshold them at 127). Files already present are kept, so running
again only fills in what is missing.

The project commits data128_128/ (2637 examples); this script builds the rest. It never adds to the
committed folder without --force: training reads it by default and pretrained/split.json names its files.

    python prepare_data.py --out data128_128_full             # download both archives, all 2927 examples
    python prepare_data.py --size 250                         # the same at 250x250, into data250_250/
    python prepare_data.py --images lfw-funneled.tgz --labels parts_lfw_funneled_gt_images.tgz --out DIR
    python prepare_data.py --from PREPARED_DIR --out DIR --link  # reuse a prepared folder (symlinks)
"""
import argparse
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import cv2
import numpy as np

from image_file import ImageFileError, decode_image, read_image

IMAGES_URL = "http://vis-www.cs.umass.edu/lfw/lfw-funneled.tgz"
LABELS_URL = "http://vis-www.cs.umass.edu/lfw/part_labels/parts_lfw_funneled_gt_images.tgz"
ROOT = Path(__file__).resolve().parent
COMMITTED_DATA = ROOT / "data128_128"
DEFAULT_SIZE = 128
SUBFOLDERS = ("inputs", "targets", "targets_face_only")
# Which channel marks each class in a label image, in RGB order (the .ppm files are RGB;
# OpenCV decodes them as BGR, so they are flipped before use).
LABEL_CHANNELS = {"hair": 0, "face": 1, "background": 2}
INPUT_JPEG_QUALITY = 95
# At full quality a 0/255 mask decodes back to exactly the same mask after thresholding at 127.
MASK_JPEG_QUALITY = 100


class DataError(Exception):
    """A problem with the user's data or paths; the message says which file and what to do."""


def main(argv=None):
    """Run the command line; return the exit status (0 done, 1 data error, 2 usage error)."""
    try:
        args = parse_args(argv)
    except SystemExit as exit:
        return exit.code
    out = args.out or ROOT / f"data{args.size}_{args.size}"
    try:
        if not args.force:
            refuse_committed(out)
        if args.source:
            fill_from_folder(args.source, out, args.size, args.link)
        else:
            images = fetch(args.images or IMAGES_URL, "--images", args.downloads)
            labels = fetch(args.labels or LABELS_URL, "--labels", args.downloads)
            build_from_archives(images, labels, out, args.size)
        stems = list_examples(out, "run prepare_data.py again to fill it, or delete the unpaired files")
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: {error}; check the path and its permissions", file=sys.stderr)
        return 1
    print(f"{os.path.relpath(out)}: " + ", ".join(f"{len(stems[sub])} {sub}" for sub in SUBFOLDERS))
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", metavar="FILE_OR_URL",
                        help=f"funneled LFW photos: a .tgz file or a URL (default: {IMAGES_URL})")
    parser.add_argument("--labels", metavar="FILE_OR_URL",
                        help=f"part-label images: a .tgz file or a URL (default: {LABELS_URL})")
    parser.add_argument("--from", dest="source", type=Path, metavar="DIR",
                        help="fill the output from an already-prepared folder with the same layout instead")
    parser.add_argument("--link", action="store_true", help="with --from: symlink the files instead of copying")
    parser.add_argument("--size", type=int, metavar="N", default=DEFAULT_SIZE,
                        help="side of the square images in pixels")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="output folder (default: data{size}_{size} beside this script)")
    parser.add_argument("--downloads", type=Path, metavar="DIR", default=ROOT / "downloads",
                        help="where downloaded archives are kept (default: downloads/ beside this script)")
    parser.add_argument("--force", action="store_true",
                        help="allow adding files to the committed data128_128/ (refused otherwise)")
    args = parser.parse_args(argv)
    if args.size < 1:
        parser.error("--size must be a positive number of pixels")
    if args.link and not args.source:
        parser.error("--link only applies together with --from DIR")
    if args.source and (args.images or args.labels):
        parser.error("--from DIR replaces --images/--labels; pass one or the other")
    return args


def refuse_committed(out):
    """Stop before downloading or writing anything when `out` is the committed data128_128/ and holds its files."""
    if out.resolve() != COMMITTED_DATA.resolve() or not (out / "inputs").is_dir():
        return
    count = len(visible_files(out / "inputs"))
    if count:
        raise DataError(f"{os.path.relpath(out)} holds the {count} examples committed with the project, which "
                        f"training, the tests and pretrained/split.json use as they are; build into another "
                        f"folder with --out (e.g. --out data128_128_full), or pass --force to add to it")


def fetch(location, option, downloads):
    """Return a local path for the archive at `location` (a path, or a URL downloaded once into `downloads`)."""
    if "://" not in location:
        path = Path(location)
        if not path.is_file():
            raise DataError(f"archive not found: {path}; pass the right file as {option}, or a URL")
        return path
    path = downloads / location.rstrip("/").rsplit("/", 1)[-1]
    if path.is_file():
        print(f"using {path} (already downloaded)")
        return path
    print(f"downloading {location} to {path}")
    downloads.mkdir(parents=True, exist_ok=True)

    def download(tmp):
        with urllib.request.urlopen(location, timeout=60) as response, open(tmp, "wb") as file:
            shutil.copyfileobj(response, file)

    try:
        write_atomic(path, download)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise DataError(f"could not download {location}: {reason}; "
                        f"download it by hand and pass it as {option} FILE")
    return path


def build_from_archives(images_archive, labels_archive, out, size):
    """Write every labelled photo as an input and two masks; fail before writing if a label has no photo."""
    print(f"reading labels from {labels_archive}")
    labels = read_labels(labels_archive, size)
    print(f"reading photos from {images_archive}")
    photos, unlabelled = read_photos(images_archive, labels.keys())
    missing = sorted(labels.keys() - photos.keys())
    if missing:
        raise DataError(f"{len(missing)} label image(s) have no photo in {images_archive}: {names(missing)}; "
                        f"pass the funneled LFW photos (lfw-funneled.tgz) as --images")
    print(f"{len(labels)} labelled photos; {unlabelled} photos without labels are not used")
    for sub in SUBFOLDERS:
        (out / sub).mkdir(parents=True, exist_ok=True)
    written = 0
    for stem in sorted(labels):
        paths = [out / sub / f"{stem}.jpg" for sub in SUBFOLDERS]
        if all(path.exists() for path in paths):
            continue
        for path, data in zip(paths, make_example(stem, photos[stem], labels[stem], size)):
            write_atomic(path, lambda tmp: tmp.write_bytes(data))
        written += 1
    print(f"wrote {written} new examples, kept {len(labels) - written} existing")


def read_labels(archive, size):
    """Map each label image's stem to its class map (the LABEL_CHANNELS index of every pixel), size x size."""
    labels = {}
    for stem, data in read_members(archive, ".ppm"):
        try:
            bgr = decode_image(data, f"{stem}.ppm in {archive}", cv2.IMREAD_COLOR)
        except ImageFileError as error:
            raise DataError(f"{error}; download the archive again") from None
        classes = np.argmax(bgr[..., ::-1], axis=2).astype(np.uint8)
        # Nearest-neighbour resizing of class indices keeps the masks strictly binary.
        labels[stem] = cv2.resize(classes, (size, size), interpolation=cv2.INTER_NEAREST)
    if not labels:
        raise DataError(f"no .ppm label images in {archive}; pass the part labels "
                        f"(parts_lfw_funneled_gt_images.tgz) as --labels")
    return labels


def read_photos(archive, stems):
    """Return ({stem: JPEG bytes} of the photos named in `stems`, how many other photos were skipped)."""
    photos, unlabelled = {}, 0
    for stem, data in read_members(archive, ".jpg"):
        if stem in stems:
            photos[stem] = data
        else:
            unlabelled += 1
    return photos, unlabelled


def read_members(archive, suffix):
    """Yield (stem, bytes) of the archive's files ending in `suffix`, in one streaming pass."""
    try:
        with tarfile.open(archive, "r|*") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(suffix):
                    yield Path(member.name).stem, tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise DataError(f"could not read archive {archive} ({error}); download it again")


def make_example(stem, photo, classes, size):
    """Return the JPEG bytes of (grayscale input, face+hair mask, face mask) for one labelled photo."""
    try:
        gray = decode_image(photo, f"{stem}.jpg", cv2.IMREAD_GRAYSCALE)
    except ImageFileError as error:
        raise DataError(f"{error}; download the photos archive again") from None
    gray = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)
    face_and_hair = np.where(classes != LABEL_CHANNELS["background"], 255, 0).astype(np.uint8)
    face = np.where(classes == LABEL_CHANNELS["face"], 255, 0).astype(np.uint8)
    return [encode_jpeg(gray, INPUT_JPEG_QUALITY),
            encode_jpeg(face_and_hair, MASK_JPEG_QUALITY),
            encode_jpeg(face, MASK_JPEG_QUALITY)]


def encode_jpeg(image, quality):
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def fill_from_folder(source, out, size, link):
    """Copy (or symlink) a prepared folder's files into `out`, after checking it is complete and of `size`."""
    if not source.is_dir():
        raise DataError(f"folder not found: {source}; "
                        f"pass a prepared folder with {', '.join(SUBFOLDERS)} to --from")
    stems = list_examples(source, "complete or re-create that folder, or prepare from the archives instead")
    if not stems["inputs"]:
        raise DataError(f"{source / 'inputs'} is empty; pass a prepared folder to --from")
    first = visible_files(source / "inputs")[0]
    try:
        image = read_image(first, cv2.IMREAD_UNCHANGED)
    except ImageFileError as error:
        raise DataError(f"{error}; check that {source} holds JPEG images") from None
    if image.shape[:2] != (size, size):
        raise DataError(f"{first} is {image.shape[1]}x{image.shape[0]}, not {size}x{size}; "
                        f"pass --size {image.shape[0]} to match {source}")
    added = kept = 0
    for sub in SUBFOLDERS:
        (out / sub).mkdir(parents=True, exist_ok=True)
        for src in visible_files(source / sub):
            dst = out / sub / src.name
            if dst.exists():
                kept += 1
                continue
            if link:
                write_atomic(dst, lambda tmp: os.symlink(src.resolve(), tmp))
            else:
                write_atomic(dst, lambda tmp: shutil.copyfile(src, tmp))
            added += 1
    print(f"{'linked' if link else 'copied'} {added} files from {source}, kept {kept} existing")


def list_examples(folder, fix):
    """Return {subfolder: file stems}, checking that every example has a file in each subfolder."""
    stems = {}
    for sub in SUBFOLDERS:
        if not (folder / sub).is_dir():
            raise DataError(f"{folder / sub} is missing; {folder} must hold {', '.join(SUBFOLDERS)}")
        files = visible_files(folder / sub)
        broken = sorted(path.name for path in files if not path.exists())
        if broken:
            raise DataError(f"{len(broken)} broken link(s) in {folder / sub}: {names(broken)}; {fix}")
        stems[sub] = {path.stem for path in files}
    everything = set().union(*stems.values())
    for sub in SUBFOLDERS:
        lacking = sorted(everything - stems[sub])
        if lacking:
            raise DataError(f"{len(lacking)} example(s) have no file in {folder / sub}: "
                            f"{names(lacking)}; {fix}")
    return stems


def visible_files(folder):
    """The folder's files in name order, leaving out hidden ones such as this script's temporary files."""
    return sorted(path for path in folder.iterdir() if not path.name.startswith("."))


def names(items, shown=5):
    """'a, b, c and 7 more': enough names to find the files without flooding the terminal."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def write_atomic(path, write):
    """Create `path` by write(temporary path) and a rename, so an interrupted run leaves no partial file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)  # left over if a run was killed outright; os.symlink will not overwrite it
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
