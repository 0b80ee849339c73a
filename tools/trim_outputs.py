#!/usr/bin/env python
"""Shrink the saved outputs of executed notebooks: console progress bars (fastprogress redraws them with carriage
returns, thousands of times per training) are removed from stream outputs, and so are Python warnings printed by
libraries (`/path/to/file.py:N: SomeWarning: ...` and the indented source line after it: they name the machine's
paths and teach nothing); every other line is kept as printed.

    python tools/trim_outputs.py nbs/12_tutorial_fashion_mnist.ipynb [...]
"""
import json, re, sys

BAR = re.compile(r"\|[█\-]*\|\s*\d+(\.\d+)?%|^\s*(Epoch \d+/\d+\s*:)?\s*$|^█+$|^\s*epoch\s+train_loss")


WARNING = re.compile(r"^(\S*\.py|<ipython-input-[^>]+>):\d+: \w*Warning: ")


def clean_stream(text):
    "The lines a terminal would show at the end, minus progress bars, their blank redraws and library warnings."
    out, in_warning = [], False
    for line in text.split("\n"):
        if WARNING.match(line): in_warning = True; continue
        if in_warning and line.startswith((" ", "\t")): continue
        in_warning = False
        for seg in line.split("\r"):
            if seg.strip() and not BAR.search(seg): out.append(seg.rstrip())
    return "\n".join(out) + ("\n" if out else "")


def trim(path):
    nb = json.load(open(path))
    before = len(json.dumps(nb))
    for c in nb["cells"]:
        if c["cell_type"] != "code": continue
        outs = []
        for o in c.get("outputs", []):
            if o.get("output_type") == "stream":
                text = clean_stream("".join(o["text"]) if isinstance(o["text"], list) else o["text"])
                if not text: continue
                if outs and outs[-1].get("output_type") == "stream" and outs[-1]["name"] == o["name"]:
                    outs[-1]["text"] += text; continue
                o = dict(o, text=text)
            outs.append(o)
        c["outputs"] = outs
    with open(path, "w") as f: json.dump(nb, f, indent=1, ensure_ascii=False); f.write("\n")
    print(f"{path}: {before:,} -> {len(json.dumps(nb)):,} characters")


if __name__ == "__main__":
    for p in sys.argv[1:]: trim(p)
