#!/usr/bin/env python
"""What the run folders' report figures cost a quality preset, before and after two changes (issues 12 and 13).

Every run folder of `bench/quality.py` writes a report with the teacher's (and the small student's) map of the test
embeddings and confusion matrix (`report.representation_lines`). Before this change: (1) `evaluate.representation_figures`
ran the test images through the network twice, the encoder alone for the map and the whole network for the confusion
matrix; (2) a folder that borrowed the teacher from another with `pipeline.share_stages` drew its figures again. Now the
encoder's outputs are caught on the way to the logits (one pass), and `share_stages` links a stage's figures with its
checkpoint, so only the folder that trained a stage draws it.

This script times both ways of drawing (`old`: two batch-norm-folded passes, the code before; `new`: the kit's) on one
of a finished preset's teachers, interleaved over `--rounds` (medians), and counts in that preset's run folders the
figure sets drawn before (every folder holding one) and after (only where the stage was trained, not shared). The
saving it reports is a projection (draws x median seconds), not a timed preset run.

    .venv/bin/python bench/report_figures.py --preset cpu_trimmed    # writes bench/results/report_figures_cpu.json
"""
import argparse, json, statistics, sys, time
from pathlib import Path

import matplotlib; matplotlib.use('agg')
import matplotlib.pyplot as plt

from machine import machine_info               # bench/machine.py
from simclr_nb.checkpoint import atomic_write_json
from simclr_nb.data import load_dataset
from simclr_nb.evaluate import representation_figures, extract_features, confusion_matrix, embedding_map, plot_confusion
from simclr_nb.pipeline import load_classifier

ROOT = Path(__file__).resolve().parent.parent


def old_figures(model, data, size):
    "The code before this change: the encoder's features and the network's predictions in two folded passes."
    feats = extract_features(getattr(model, 'encoder', model), data.test_x, size=size)
    cm = confusion_matrix(data.test_y, extract_features(model, data.test_x, size=size).argmax(1), data.n_classes)
    return dict(map=embedding_map(feats, data.test_y, data.classes), confusion=plot_confusion(cm, data.classes)), cm


def draw(way, model, data, size):
    "Seconds to compute and render both figures (PNG into memory, as the report writes them), and the confusion matrix."
    import io
    t = time.perf_counter()
    if way == 'old': figs, cm = old_figures(model, data, size)
    else: r = representation_figures(model, data, size=size); figs, cm = r['figures'], r['confusion']
    for fig in figs.values(): fig.savefig(io.BytesIO(), format='png', dpi=100, bbox_inches='tight'); plt.close(fig)
    return time.perf_counter() - t, cm


def count_draws(run):
    """Figure sets (`<key>_map.png`) in the preset's run folders: all of them were drawn before; after, only the trained ones.
    `linked`: the shared sets that are hard links of their source's (a run folder written since `share_stages` links them)."""
    before, after, linked, folders = 0, 0, 0, []
    for m in sorted(run.rglob('metrics.json')):
        metrics = json.loads(m.read_text())
        keys = sorted(p.name[:-len('_map.png')] for p in m.parent.glob('*_map.png'))
        if not keys: continue
        trained = [k for k in keys if 'shared_from' not in metrics.get(k, {})]
        hard_linked = [k for k in keys if k not in trained and (m.parent / f'{k}_map.png').stat().st_nlink > 1]
        before += len(keys); after += len(trained); linked += len(hard_linked)
        folders.append(dict(folder=str(m.parent.relative_to(ROOT)), figure_sets=keys, trained_here=trained, linked_from_source=hard_linked))
    return before, after, linked, folders


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--preset', default='cpu_trimmed')
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--out', default=str(ROOT / 'bench' / 'results' / 'report_figures_cpu.json'))
    a = ap.parse_args(argv)
    run = ROOT / 'runs' / f'bench_quality_{a.preset}'
    teachers = sorted(run.glob('0.2pct/final__*/finetune_0.2pct_seed0.pth'))
    if not teachers: sys.exit(f"{run} has no finished 0.2% teacher: run bench/quality.py --preset {a.preset} first")
    cfg = json.loads((teachers[0].parent / 'config.json').read_text())
    data, (model, _) = load_dataset(cfg['dataset']), load_classifier(teachers[0], 'cpu')
    draw('new', model, data, cfg['image_size'])   # warm-up
    times, same = {'old': [], 'new': []}, True
    for _ in range(a.rounds):
        cms = {}
        for way in ('old', 'new'):
            s, cms[way] = draw(way, model, data, cfg['image_size']); times[way].append(round(s, 2))
        same &= bool((cms['old'] == cms['new']).all())
    med = {w: statistics.median(v) for w, v in times.items()}
    before, after, linked, folders = count_draws(run)
    res = dict(what=__doc__.split('\n')[0], command='python bench/report_figures.py ' + ' '.join(sys.argv[1:] if argv is None else argv),
               machine=machine_info(), teacher=str(teachers[0].relative_to(ROOT)), rounds=a.rounds, seconds=times, median_s=med,
               speedup=round(med['old'] / med['new'], 2), same_confusion_matrix=same,
               preset=a.preset, draws_before=before, draws_after=after, shared_sets_hard_linked=linked,
               projected_saving_s=round(before * med['old'] - after * med['new']),
               projection="draws_before x median old seconds - draws_after x median new seconds", folders=folders)
    atomic_write_json(a.out, res)
    print(f"drawing both figures: old {med['old']:.1f} s, new {med['new']:.1f} s ({res['speedup']}x), same confusion matrix: {same}; "
          f"{a.preset}: {before} figure sets drawn before, {after} after: about {res['projected_saving_s']} s less per preset run")


if __name__ == '__main__': main()
