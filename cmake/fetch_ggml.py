"""Fetch a pinned ggml source tree from a Python package index (run by CMake at configure time).

ggml is not committed to this repository. It is taken from the source distribution of a
Python package that vendors it, pinned by version and sha256:

  ggml-python==0.0.45       -> ggml 0.15.3  (3.4 MB download, the default)
  llama-cpp-python==0.3.36  -> ggml 0.25.3  (77 MB download)

Only the ggml subtree is extracted, into a cache directory shared between builds:
  $DA3CPP_CACHE_DIR, else $XDG_CACHE_HOME/depth-anything-cpp, else ~/.cache/depth-anything-cpp.

Index lookup order: $PIP_INDEX_URL, $PIP_EXTRA_INDEX_URL (space separated), https://pypi.org/simple,
then the pinned files.pythonhosted.org URL. The sha256 is always verified.
Proxies come from the usual *_proxy variables; $PIP_CERT / $SSL_CERT_FILE name a CA bundle.

Usage: python fetch_ggml.py <provider>     prints the ggml source directory on the last stdout line.
"""
from __future__ import annotations

import hashlib
import html.parser
import json
import os
import shutil
import ssl
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

PROVIDERS = {
    "ggml-python": {
        "project": "ggml-python",
        "filename": "ggml_python-0.0.45.tar.gz",
        "sha256": "10aac52075cf3c7ef2b00d6c35b1c23f7b018dbeff8ae8df67339b4be1166f05",
        "url": "https://files.pythonhosted.org/packages/0f/0e/ef343189f9e31b651e57770d04a0e5fc64795d3ee9e8f46fe0fc5e0aa8e0/ggml_python-0.0.45.tar.gz",
        "subtree": "ggml_python-0.0.45/vendor/ggml",
        "ggml_version": "0.15.3",
    },
    "llama-cpp-python": {
        "project": "llama-cpp-python",
        "filename": "llama_cpp_python-0.3.36.tar.gz",
        "sha256": "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e",
        "url": "https://files.pythonhosted.org/packages/ec/e9/e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59fe7cf3/llama_cpp_python-0.3.36.tar.gz",
        "subtree": "llama_cpp_python-0.3.36/vendor/llama.cpp/ggml",
        "ggml_version": "0.25.3",
    },
}

MARKER = ".da3cpp-sdist-sha256"


def log(msg: str) -> None:
    print(f"fetch_ggml: {msg}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    if os.environ.get("DA3CPP_CACHE_DIR"):
        return Path(os.environ["DA3CPP_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "depth-anything-cpp"


def ssl_context() -> ssl.SSLContext:
    cafile = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if cafile and os.path.isfile(cafile):
        return ssl.create_default_context(cafile=cafile)
    return ssl.create_default_context()


def urlopen(url: str, accept: str | None = None):
    req = urllib.request.Request(url, headers={"User-Agent": "depth-anything-cpp-build"})
    if accept:
        req.add_header("Accept", accept)
    if url.startswith("https:"):
        return urllib.request.urlopen(req, timeout=120, context=ssl_context())
    return urllib.request.urlopen(req, timeout=120)


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def find_on_index(index: str, project: str, filename: str) -> str | None:
    """URL of `filename` on a PEP 503/691 simple index, or None."""
    page = index.rstrip("/") + "/" + project + "/"
    fetch_url = page
    if page.startswith("file:"):  # local mirror: a directory with index.html, as pip reads it
        fetch_url = page + "index.html"
    try:
        with urlopen(fetch_url, "application/vnd.pypi.simple.v1+json, text/html;q=0.5") as resp:
            ctype = resp.headers.get("Content-Type", "")
            body = resp.read()
    except Exception as exc:  # unreachable index, 404: try the next one
        log(f"{page}: {exc}")
        return None
    if "json" in ctype:
        for f in json.loads(body).get("files", []):
            if f.get("filename") == filename:
                return urllib.parse.urljoin(page, f["url"])
        return None
    parser = _Links()
    parser.feed(body.decode("utf-8", "replace"))
    for href in parser.hrefs:
        url = urllib.parse.urljoin(page, href)
        if urllib.parse.unquote(urllib.parse.urlsplit(url).path).rsplit("/", 1)[-1] == filename:
            return url
    return None


def candidate_urls(spec: dict) -> list[str]:
    indexes = []
    if os.environ.get("PIP_INDEX_URL"):
        indexes.append(os.environ["PIP_INDEX_URL"])
    indexes += os.environ.get("PIP_EXTRA_INDEX_URL", "").split()
    if "https://pypi.org/simple" not in [i.rstrip("/") for i in indexes]:
        indexes.append("https://pypi.org/simple")
    urls = []
    for index in indexes:
        url = find_on_index(index, spec["project"], spec["filename"])
        if url:
            urls.append(url)
    urls.append(spec["url"])
    return urls


def download(spec: dict, dest: Path) -> None:
    errors = []
    for url in candidate_urls(spec):
        log(f"downloading {url.split('#')[0]}")
        sha = hashlib.sha256()
        tmp = dest.with_suffix(".part")
        try:
            with urlopen(url.split("#")[0]) as resp, open(tmp, "wb") as out:
                while chunk := resp.read(1 << 20):
                    sha.update(chunk)
                    out.write(chunk)
        except Exception as exc:
            errors.append(f"{url}: {exc}")
            continue
        if sha.hexdigest() != spec["sha256"]:
            tmp.unlink(missing_ok=True)
            errors.append(f"{url}: sha256 mismatch ({sha.hexdigest()} != {spec['sha256']})")
            continue
        os.replace(tmp, dest)
        return
    raise SystemExit("fetch_ggml: could not download " + spec["filename"] + ":\n  " + "\n  ".join(errors)
                     + "\nSet DA3CPP_GGML_SOURCE_DIR to a local ggml source tree to build offline.")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def extract_subtree(archive: Path, subtree: str, dest: Path) -> None:
    prefix = subtree.rstrip("/") + "/"
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=dest.parent))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = []
            for m in tar.getmembers():
                if not m.name.startswith(prefix) or not (m.isfile() or m.isdir()):
                    continue
                m.name = m.name[len(prefix):]
                if not m.name or m.name.startswith("/") or ".." in Path(m.name).parts:
                    continue
                members.append(m)
            if not members:
                raise SystemExit(f"fetch_ggml: {subtree} not found in {archive.name}")
            kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp, members=members, **kw)
        if not (tmp / "CMakeLists.txt").is_file():
            raise SystemExit(f"fetch_ggml: {subtree} in {archive.name} has no CMakeLists.txt")
        (tmp / MARKER).write_text(sha256_of(archive) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def fetch(provider: str) -> Path:
    spec = PROVIDERS[provider]
    root = cache_root()
    dest = root / f"ggml-{spec['ggml_version']}-{spec['filename'].removesuffix('.tar.gz')}"
    marker = dest / MARKER
    if marker.is_file() and marker.read_text().strip() == spec["sha256"]:
        return dest
    root.mkdir(parents=True, exist_ok=True)
    archive = root / spec["filename"]
    if not (archive.is_file() and sha256_of(archive) == spec["sha256"]):
        download(spec, archive)
    log(f"extracting {spec['subtree']} -> {dest}")
    extract_subtree(archive, spec["subtree"], dest)
    archive.unlink(missing_ok=True)  # only the ggml subtree is kept
    return dest


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in PROVIDERS:
        print(f"usage: {argv[0]} {{{'|'.join(PROVIDERS)}}}", file=sys.stderr)
        return 2
    print(fetch(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
