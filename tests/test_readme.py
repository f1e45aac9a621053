"""The README as a reader meets it: contents, links, generated numbers."""

import glob
import json
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")
SPEED_JSON = os.path.join(REPO, "benchmarks", "results", "frontend_speed.json")

#: Every markdown page a reader can reach from the README.
PAGES = sorted(
    {README}
    | set(glob.glob(os.path.join(REPO, "docs", "**", "*.md"), recursive=True))
    | set(glob.glob(os.path.join(REPO, "recipes", "*", "README.md")))
    | set(glob.glob(os.path.join(REPO, "studies", "*", "*.md")))
    | set(glob.glob(os.path.join(REPO, "pretrained", "*", "README.md")))
)

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```", re.S)


def _text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def slug(heading):
    """GitHub's anchor of a markdown heading.

    Example
    -------
    >>> slug("The front-end in your own yaml")
    'the-front-end-in-your-own-yaml'
    >>> slug("Using `lobes`: any yaml!")
    'using-lobes-any-yaml'
    """
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text):
    """The anchors of a page's headings (outside code blocks)."""
    found = set()
    for line in CODE.sub("", text).splitlines():
        m = re.match(r"#{1,6} (.+)", line)
        if m:
            found.add(slug(m.group(1)))
    return found


def _sections(text):
    return [
        line[3:].strip()
        for line in CODE.sub("", text).splitlines()
        if line.startswith("## ")
    ]


def test_readme_is_short_and_in_the_users_order():
    text = _text(README)
    lines = text.splitlines()
    assert len(lines) <= 400, len(lines)
    sections = _sections(text)
    order = [
        "Contents", "Quick start", "Install",
        "The front-end in your own yaml", "Recipes", "Pretrained models",
        "Results on real audio", "Speed", "Reliability", "Citation",
    ]
    assert [s for s in sections if s in order] == order
    # The swap block and the Python example within the first screens.
    first_yaml = next(
        i for i, ln in enumerate(lines) if ln.startswith("```yaml")
    )
    first_python = next(
        i for i, ln in enumerate(lines) if ln.startswith("```python")
    )
    assert first_yaml < 120 and first_python < 120
    # Exactly the two quick-start commands.
    quick = text.split("## Quick start")[1].split("## ")[0]
    block = quick.split("```bash")[1].split("```")[0]
    commands = [ln.split("#")[0].strip() for ln in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]


def test_install_does_not_promise_the_package_index():
    install = _text(README).split("## Install")[1].split("\n## ")[0]
    assert "not on the Python package index" in install
    assert "pip install speechbrain-relevance" not in _text(README)
    assert "python -m build" in install


def test_table_of_contents_lists_every_section():
    text = _text(README)
    contents = text.split("## Contents")[1].split("\n## ")[0]
    listed = re.findall(r"- \[([^\]]+)\]\(#([^)]+)\)", contents)
    sections = [s for s in _sections(text) if s != "Contents"]
    assert [name for name, _ in listed] == sections
    assert [a for _, a in listed] == [slug(s) for s in sections]


def test_readme_says_how_to_upload_a_model():
    text = _text(README)
    assert "hf upload <user>/<repo>" in text
    assert "upload_folder(" in text
    assert 'from_hparams(source="<user>/<repo>")' in text


@pytest.mark.parametrize(
    "page", PAGES, ids=[os.path.relpath(p, REPO) for p in PAGES]
)
def test_relative_links_resolve(page):
    text = _text(page)
    here = os.path.dirname(page)
    broken = []
    for target in LINK.findall(CODE.sub("", text)):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(here, path)) if path else page
        if not os.path.exists(full):
            broken.append(target)
        elif anchor and full.endswith(".md"):
            if anchor not in anchors(_text(full)):
                broken.append(target)
    assert not broken, broken


def test_speed_table_is_the_benchmarks_json():
    text = _text(README)
    block = text.split("<!-- speed:frontend -->")[1].split(
        "<!-- /speed:frontend -->"
    )[0]
    with open(SPEED_JSON, encoding="utf-8") as f:
        table = json.load(f)["table_markdown"]
    assert block.strip() == table.strip()


def test_readme_intervals_are_the_studys_generated_numbers():
    """Every interval the README quotes is in a table the study wrote."""
    results = os.path.join(REPO, "studies", "fsdd_frontends", "RESULTS.md")
    blocks = re.findall(
        r"<!-- study:(\w+) -->(.*?)<!-- /study:\1 -->", _text(results), re.S
    )
    generated = "\n".join(body for _, body in blocks)
    quoted = re.findall(r"[+-]\d+\.\d \[[+-]\d+\.\d, [+-]\d+\.\d\]",
                        CODE.sub("", _text(README)))
    assert quoted, "the README quotes no interval"
    missing = [q for q in quoted if q not in generated]
    assert not missing, missing


def _blocks(kind):
    text = _text(README)
    return re.findall(rf"```{kind}\n(.*?)```", text, re.S)


def test_readme_lobes_example_runs_as_written():
    code = next(b for b in _blocks("python") if "CosGaussFilterbank" in b)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert tuple(scope["feats"].shape) == (4, 431, 80)
    assert scope["weighted"].shape == scope["masks"].shape == (4, 431, 80)


@pytest.mark.parametrize("index", [0, 1])
def test_readme_swap_blocks_build_front_ends(index):
    """The two yaml blocks, in a yaml that has n_mels and sample_rate."""
    import torch
    from hyperpyyaml import load_hyperpyyaml

    block = _blocks("yaml")[index]
    hparams = load_hyperpyyaml("n_mels: 40\nsample_rate: 16000\n" + block)
    feats = hparams["compute_features"](
        torch.randn(2, 16000), torch.tensor([1.0, 0.5])
    )
    # 10 ms frames of one second, 40 bands: as SpeechBrain's Fbank.
    assert tuple(feats.shape) == (2, 101, 40)
