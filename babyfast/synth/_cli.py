"""`babyfast synth` and `babyfast synth-probes`: write the BabyWorld corpus and its probe suites."""
from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def _size(text: str) -> tuple[int, int]:
    from .corpus import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v}: must be >= 1")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{v}: must be > 0")
    return v


def register(subparsers) -> None:
    """Add the `synth` and `synth-probes` subcommands."""
    p = subparsers.add_parser(
        "synth",
        help="render a BabyWorld corpus (recordings, utterances.csv, ages.csv, truth) into a folder",
        description="Render the procedural infant's-eye corpus in the folder layout `babyfast ingest` reads. "
        "Deterministic by seed.",
    )
    p.add_argument("out", help="output folder")
    p.add_argument("--children", type=_positive_int, default=3, help="number of children (default 3)")
    p.add_argument("--hours", type=_positive_float, default=0.5, help="hours of video in total (default 0.5)")
    p.add_argument("--size", type=_size, default=(256, 256), help="frame size: N or WxH (default 256)")
    p.add_argument("--fps", type=_positive_float, default=10.0, help="frames per second (default 10)")
    p.add_argument("--gop", type=_positive_int, default=None,
                   help="fixed keyframe interval in frames (default: the encoder's own, as a camera)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--codec", default="h264", choices=["h264", "hevc", "vp9", "mjpeg"],
                   help="video codec (default h264)")
    p.add_argument("--recording-minutes", type=_positive_float, default=5.0,
                   help="longest recording, minutes (default 5)")
    p.add_argument("--workers", type=_positive_int, default=None, help="parallel processes (default: CPU cores)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a BabyWorld corpus already in OUT (only the files its world.json lists)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_synth)

    q = subparsers.add_parser(
        "synth-probes",
        help="write the held-out BabyWorld probe suites with answer keys",
        description="Write object recognition, word-referent, object permanence, counting, left/right and "
        "gaze-following suites, with held-out toy instances, in the layouts the evaluation reads.",
    )
    q.add_argument("out", help="output folder")
    q.add_argument("--size", type=_size, default=(256, 256), help="frame size: N or WxH (default 256)")
    q.add_argument("--trials", type=_positive_int, default=480,
                   help="trials per suite (default 480: a 95%% interval of about +-4.5 points at 4-way chance)")
    q.add_argument("--quads", type=_positive_int, default=100, help="permanence quadruplets (default 100)")
    q.add_argument("--movie-frames", type=_positive_int, default=24, help="frames per permanence movie (default 24)")
    q.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    q.add_argument("--suites", nargs="+", default=None, metavar="SUITE",
                   help="suites to write (default all): object_recognition word_referent permanence counting "
                   "left_right gaze")
    q.add_argument("--workers", type=_positive_int, default=None, help="parallel processes (default: CPU cores)")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(func=_probes)


def _synth(args: argparse.Namespace) -> int:
    from .corpus import write_corpus

    try:
        corpus = write_corpus(
            args.out, children=args.children, hours=args.hours, size=args.size, fps=args.fps, gop=args.gop,
            seed=args.seed, codec=args.codec, workers=args.workers, recording_minutes=args.recording_minutes,
            overwrite=args.overwrite, progress=not args.no_progress,
        )
    except (ValueError, FileExistsError) as e:
        log.error("%s", e)
        return 2
    log.info("wrote %d recordings (%d frames) to %s", len(corpus.recordings), corpus.frames, corpus.root)
    return 0


def _probes(args: argparse.Namespace) -> int:
    from .probes import write_probes

    try:
        manifest = write_probes(
            args.out, size=args.size, trials=args.trials, quads=args.quads, movie_frames=args.movie_frames,
            seed=args.seed, suites=args.suites, workers=args.workers, progress=not args.no_progress,
        )
    except (ValueError, FileExistsError) as e:
        log.error("%s", e)
        return 2
    log.info("wrote probe suites %s to %s", sorted(manifest["suites"]), args.out)
    return 0
