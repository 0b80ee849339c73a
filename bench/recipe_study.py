#!/usr/bin/env python
"""The distillation part of the recipe study that `bench/quality.py` cannot afford (issue 12): distillation epochs,
tau and the label loss, chosen on validation over three seeds, on a fixed Fashion-MNIST subset at its native 28 px.

The subset is the one of `bench/precision_accuracy.py` (`--train-images` training images of which 10% are the
class-balanced validation hold-out, `--test-images` test images), so the fp32 pretrainings (12 epochs) and 10% teachers
that benchmark left in `runs/precision_accuracy/fp32_seed<s>` are reused, not retrained. Every arm runs on the three
seeds (seed s = pretraining seed s, label split s, training seed s): the same-size student of seed s's fine-tuned 10%
teacher, one setting changed at a time from the base (30 epochs over the training images, tau 1, no label loss,
random initialisation). Each arm is compared with the base by `simclr_nb.evaluate.verdict`, paired over the seeds, on
**validation** accuracy; test accuracies are stored beside them and never used for a choice.

`--pretraining` adds the pretraining study: the NT-Xent temperature, the colour strength, the batch, the base rate and
the number of epochs, one at a time, each a pretraining per seed followed by the 10% fine-tuning; every arm is judged
on the fine-tuned model's validation accuracy against this study's own base arm (the kNN accuracy of the pretrained
encoder on validation is stored beside it). It trains in the kit's default precision (`precision='auto'`: bf16 with the
projection head in fp32 where bf16 is native, `04a_precision`), which makes its 3 x 8 pretrainings affordable on 2
cores; the distillation study's teachers are fp32.
`--pretrain-cpu` starts from the pretraining of `bench/quality.py`'s cpu preset (tau 0.5, colour 1.0, the paper's
crops of 8-100% of the image) and changes the two settings the pretraining study left open for it: the temperature
(0.2, which that study's base used; the colour study's winner paired colour 1.0 with it) and the smallest area of the
views' random resized crops (0.2, 0.35, 0.5 against the paper's 0.08, made for 224 px: at 28 px a crop of 8% of the
image is 8 x 8 pixels); and the encoder's width (0.5 against 0.25). Judged like the pretraining study, against its
own base arm, on the fine-tuned model's validation accuracy.
`--digits-crop` asks the crop question of the demo's digits at 8 px (where the paper's smallest crop, 8% of the
image, is about 2 x 2 pixels), with the demo's settings, three pretrainings per arm.
`--digits-finetune` asks the fine-tuning questions of `quality.py --preset cpu_ft_recipe` (the schedule: the official cosine
against fastai's one-cycle; batch norm: each batch's statistics against the pretrained ones kept) of the demo's digits:
one pretraining with the demo's settings, then every arm at 1% and 10% over the demo's three seeds and label splits.
`--digits-colour` repeats the colour-strength comparison (1.0 against 0.5) on the demo's digits with the demo's
settings, three pretrainings per arm: a default that changes for Fashion-MNIST is checked on the data it also serves.

The JSON is rewritten after every arm and finished runs are reused (the pipeline's run folders), so an interrupted
study resumes where it stopped.

    python bench/recipe_study.py        # writes bench/results/recipe_study_<cpu|cuda>.json
"""
import argparse, dataclasses, sys, time
from pathlib import Path

import torch

from machine import machine_info               # bench/machine.py
from precision_accuracy import subset          # the same Fashion-MNIST subset as the bf16 study

from simclr_nb.checkpoint import atomic_write_json
from simclr_nb.data import load_dataset
from simclr_nb.evaluate import spread, verdict
from simclr_nb.pipeline import PipelineConfig, run_pipeline, share_stages, stage_key, fraction_tag
from simclr_nb.checkpoint import NonFiniteLoss

ROOT = Path(__file__).resolve().parent.parent
FRACTION = 0.1

DISTILL_ARMS = {   # name: overrides of the base config (base: 30 epochs, tau 1, no label loss, random init)
    'base': {},
    'epochs_10': dict(distill_epochs=10), 'epochs_60': dict(distill_epochs=60),
    'tau_0.1': dict(tau_self=0.1),
    'label_loss_0.5': dict(distill_alpha=0.5),
}

PRETRAIN_ARMS = {  # name: overrides of the pretraining base (tau 0.2, colour 0.5, batch 256, base rate 0.075, 12 epochs)
    'base': {},
    'tau_0.5': dict(temperature=0.5), 'color_1.0': dict(color_strength=1.0), 'batch_128': dict(pretrain_bs=128),
    'base_lr_0.15': dict(pretrain_base_lr=0.15), 'tau_0.1': dict(temperature=0.1), 'color_0.25': dict(color_strength=0.25),
    'epochs_24': dict(pretrain_epochs=24),
}
# the base of --pretrain-cpu: quality.py's cpu-preset pretraining (tau 0.5, colour 1.0) with the paper's smallest crop area, 0.08
CPU_PRETRAIN_BASE = dict(temperature=0.5, color_strength=1.0)
CROP_ARMS = {f'crop_{a}': dict(pretrain_crop_min_area=a) for a in (0.2, 0.35, 0.5)}   # the views' smallest crop area, both crop studies
# width_0.5 (added 2026-12-06, after 48 epochs instead of 32 left the full-data 0.2% fine-tuning unchanged): is a wider
# encoder, not a longer schedule, what the fine-tuned model can use? Twice the channels (32 in the first stage), about
# three times the pretraining cost expected (measured: 2.5x on the subset, 235 against 96 s in the mean); the same settings otherwise
CPU_PRETRAIN_ARMS = {'base': {}, 'tau_0.2': dict(temperature=0.2), **CROP_ARMS, 'width_0.5': dict(width=0.5)}
DIGITS_COLOUR_ARMS = {'base': {}, 'color_1.0': dict(color_strength=1.0)}   # is the Fashion-MNIST colour choice right for digits?
DIGITS_CROP_ARMS = {'base': {}, **CROP_ARMS}
# the demo's fine-tuning with one setting changed (one pretraining serves every arm): the schedule and the batch norms, whose
# Fashion-MNIST probes are quality.py's cpu_ft_recipe; at the demo's label fractions, one study each
DIGITS_FT_ARMS = {'base': {}, 'one_cycle': dict(ft_schedule='one_cycle'), 'bn_frozen': dict(ft_bn='frozen')}
DIGITS_FT_FRACTIONS = (0.01, 0.1)
MAIN_MEASURE = {'distill': 'student', 'pretrain': 'finetune', 'pretrain_cpu': 'finetune', 'digits_colour': 'finetune', 'digits_crop': 'finetune',
                **{f'digits_ft_{fraction_tag(f)}': 'finetune' for f in DIGITS_FT_FRACTIONS}}   # each study: what its arms are chosen on (validation)


def base_config(args, seed, **over) -> PipelineConfig:
    "`bench/precision_accuracy.py`'s fp32 config of `seed` (so its runs are reused), with the self-distilled student on."
    return dataclasses.replace(PipelineConfig(
        dataset='fashion_mnist', image_size=28, label_fractions=(FRACTION,), seed=seed, seeds=(seed,), precision='fp32',
        width=0.25, pretrain_epochs=args.epochs, baselines=False, self_distill=True, student_depth=None,
        finetune_steps=200, distill_epochs=30, distill_bs=128, ft_schedule='cosine'), **over)   # the committed arms' schedule


def seed_folder(args, seed) -> Path:
    "The pretraining + 10% teacher of `seed`: precision_accuracy.py's run folder when it exists, else this study's own."
    pa = ROOT/'runs'/'precision_accuracy'/f'fp32_seed{seed}'
    return pa if (pa/'pretrain.pth').exists() else Path(args.runs)/f'teacher_seed{seed}'


class Study:
    def __init__(self, args):
        self.args, self.t0, self.saved = args, time.time(), False
        self.data = subset(load_dataset('fashion_mnist'), args.train_images, args.test_images)
        dev = torch.device(args.device).type
        self.out = ROOT/'bench'/'results'/f'recipe_study_{dev}.json'
        self.res = dict(command=' '.join(['python', 'bench/recipe_study.py'] + sys.argv[1:]), machine=machine_info(args.device),
                        settings=dict(train_images=args.train_images, test_images=args.test_images, fraction=FRACTION,
                                      seeds=args.seeds, pretrain_epochs=args.epochs, base=base_config(args, 0).to_dict()),
                        **{study: {} for study in MAIN_MEASURE})

    def log(self, *a): print(f'[{time.time() - self.t0:6.0f} s]', *a, flush=True)

    def save(self):
        self.res['wall_s'] = round(time.time() - self.t0, 1)
        atomic_write_json(self.out, self.res)
        self.saved = True

    def teacher(self, seed) -> Path:
        "Pretrain and fine-tune (10%) seed `seed` with the base recipe, unless done."
        folder = seed_folder(self.args, seed)
        if folder.parent.name == 'precision_accuracy': return folder   # finished there (its config.json predates the renamed keys)
        run_pipeline(base_config(self.args, seed, self_distill=False), out=folder, device=self.args.device,
                     stages=('pretrain', 'finetune'), data=self.data, log=lambda *a: None, progress=False)
        return folder

    def run(self, cfg, folder, stages, data=None) -> dict:
        "The metrics of `run_pipeline` on `folder` (finished stages reused), quietly, on this study's data or `data`."
        return run_pipeline(cfg, out=folder, device=self.args.device, stages=stages, data=self.data if data is None else data,
                            log=lambda *a: None, progress=False).metrics

    def run_arm(self, study, name, seed, cfg, stages, share, data=None) -> dict:
        folder = Path(self.args.runs)/study/f'{name}_seed{seed}'
        if share: share_stages(seed_folder(self.args, seed), folder, share)
        return self.run(cfg, folder, stages, data)

    def record(self, study, name, over, per_seed):
        "Store one arm: per-seed validation (and test) accuracies (fractions) of each measure, its verdict against the base arm, and where it ran."
        first = next(iter(per_seed.values()))
        arm = {m: {split: spread({s: v[m][split] for s, v in per_seed.items()}).to_dict() for split in first[m]} for m in first}
        m = self.res['machine']
        self.res[study][name] = dict(overrides=over, **arm, ran_on={k: m[k] for k in ('cpu', 'cpu_capability', 'date', 'git_commit', 'uncommitted_changes')})
        self.judge(study)
        self.save()

    def judge(self, study):
        "Each arm's main measure against the base arm, on validation, paired over seeds (the one verdict function)."
        arms, main = self.res[study], MAIN_MEASURE[study]
        if 'base' not in arms: return
        base = arms['base'][main]['valid']['values']
        for name, arm in arms.items():
            if name == 'base' or main not in arm: continue   # an arm that diverged has no accuracy
            a = arm[main]['valid']['values']
            common = sorted(set(a) & set(base))
            if len(common) < 2: continue
            v = verdict({s: a[s] for s in common}, {s: base[s] for s in common})
            arm['vs_base'] = dict(measure=f"{main} validation accuracy", **v.to_dict())
        best = max((n for n in arms if main in arms[n]), key=lambda n: spread(arms[n][main]['valid']['values']).mean)
        self.res[f'{study}_chosen'] = dict(arm=best, verdict=arms[best].get('vs_base'),
                                           rule="highest mean validation accuracy; it replaces the base only where its verdict is 'holds'")

    def distill(self):
        for name, over in DISTILL_ARMS.items():
            if name in self.res['distill'] and not self.args.redo: continue
            per_seed = {}
            for seed in self.args.seeds:
                teacher = stage_key('finetune', FRACTION, seed)
                self.teacher(seed)
                m = self.run_arm('distill', name, seed, base_config(self.args, seed, **over), ('distill',), ['pretrain', teacher])
                st = m[stage_key('distill_self', FRACTION, seed)]
                per_seed[seed] = dict(student=dict(valid=st['valid_accuracy'], test=st['accuracy']),
                                      teacher=dict(valid=m[teacher]['valid_accuracy'], test=m[teacher]['accuracy']))
                self.log(f"distill {name} seed {seed}: student {100 * st['valid_accuracy']:.1f} / teacher "
                         f"{100 * m[teacher]['valid_accuracy']:.1f} (validation), {st['wall_s']:.0f} s")
            self.record('distill', name, over, per_seed)

    def pretrain_arms(self, study, arms, config, data=None):
        "Each arm of `arms`: for every seed a pretraining (`config(seed, **overrides)`) and the 10% fine-tuning, judged on validation."
        for name, over in arms.items():
            if name in self.res[study] and not self.args.redo: continue
            per_seed = {}
            for seed in self.args.seeds:
                m = self.run_arm(study, name, seed, config(seed, **over), ('pretrain', 'finetune'), None, data)
                ft, pre = m[stage_key('finetune', FRACTION, seed)], m['pretrain']
                per_seed[seed] = dict(finetune=dict(valid=ft['valid_accuracy'], test=ft['accuracy']), knn=dict(valid=pre['knn_accuracy']),
                                      pretrain_wall_s=dict(valid=pre['wall_s']))
                self.log(f"{study} {name} seed {seed}: kNN {100 * pre['knn_accuracy']:.1f}, fine-tuned {100 * ft['valid_accuracy']:.1f} "
                         f"(validation), {pre['precision']}, {pre['wall_s']:.0f} s")
            self.record(study, name, over, per_seed)

    def pretrain_cpu(self):
        "Each arm: a pretraining per seed with the cpu preset's pretraining settings and one of them changed, then the 10% fine-tuning."
        self.pretrain_arms('pretrain_cpu', CPU_PRETRAIN_ARMS, lambda seed, **over: base_config(
            self.args, seed, precision='auto', self_distill=False, **{**CPU_PRETRAIN_BASE, **over}))

    @staticmethod
    def digits_config(seed, **over) -> PipelineConfig:
        "The demo's settings on digits (8 px, fine-tuning without augmentation) for pretraining seed `seed` and its 10% fine-tuning."
        return PipelineConfig(label_fractions=(FRACTION,), seed=seed, seeds=(seed,), ft_augment='none', ft_schedule='cosine',
                              baselines=False, self_distill=False, student_depth=None, **over)

    def digits_colour(self):
        "The demo's data: colour strength 1.0 against 0.5 on digits."
        self.pretrain_arms('digits_colour', DIGITS_COLOUR_ARMS, self.digits_config, load_dataset('digits'))

    def digits_crop(self):
        "The demo's data: the smallest crop area of the pretraining views, 0.2, 0.35 and 0.5 against the paper's 0.08."
        self.pretrain_arms('digits_crop', DIGITS_CROP_ARMS, self.digits_config, load_dataset('digits'))

    def digits_finetune(self):
        """The demo's fine-tuning (digits, 8 px, `--ft-augment none`, its seeds and label splits) with one setting of
        `DIGITS_FT_ARMS` changed, at 1% and 10%: one pretraining with the demo's settings serves every arm and seed, and each
        arm is judged on validation against the base, paired over the seeds. An arm whose loss becomes NaN is kept as diverged."""
        data, root = load_dataset('digits'), Path(self.args.runs)/'digits_finetune'
        # `make demo`'s settings with the schedule of its base arm (the cosine, the default when this study chose one-cycle)
        cfg0 = PipelineConfig(ft_augment='none', seeds=tuple(self.args.seeds), baselines=False, ft_schedule='cosine')
        self.run(dataclasses.replace(cfg0, label_fractions=(0.1,)), root/'pretrain', ('pretrain',), data)
        for f in DIGITS_FT_FRACTIONS:
            study = f'digits_ft_{fraction_tag(f)}'
            for name, over in DIGITS_FT_ARMS.items():
                if name in self.res[study] and not self.args.redo: continue
                folder = root/f'{name}_{fraction_tag(f)}'
                if not (folder/'pretrain.pth').exists(): share_stages(root/'pretrain', folder, ['pretrain'])
                try: m = self.run(dataclasses.replace(cfg0, label_fractions=(f,), **over), folder, ('finetune',), data)
                except NonFiniteLoss as e:
                    self.log(f'{study} {name}: diverged: {e}'); self.res[study][name] = dict(overrides=over, diverged=str(e)); self.save(); continue
                runs = {s: m[stage_key('finetune', f, s)] for s in self.args.seeds}
                per_seed = {s: dict(finetune=dict(valid=r['valid_accuracy'], test=r['accuracy'])) for s, r in runs.items()}
                self.log(f"{study} {name}: fine-tuned {100 * spread({s: v['finetune']['valid'] for s, v in per_seed.items()}).mean:.1f} (validation, mean)")
                self.record(study, name, over, per_seed)

    def pretraining(self):
        "Each pretraining arm: a pretraining per seed (precision 'auto'), then the 10% fine-tuning from head layer 1."
        self.pretrain_arms('pretrain', PRETRAIN_ARMS, lambda seed, **over: base_config(self.args, seed, precision='auto', self_distill=False, **over))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--train-images', type=int, default=4000)
    ap.add_argument('--test-images', type=int, default=1000)
    ap.add_argument('--epochs', type=int, default=12, help='pretraining epochs (precision_accuracy.py: 12)')
    ap.add_argument('--redo', action='store_true', help='re-read every arm (finished runs are still reused)')
    ap.add_argument('--pretraining', action='store_true', help='also the pretraining study (8 arms x 3 seeds of pretraining)')
    ap.add_argument('--pretrain-cpu', action='store_true', help="also the cpu preset's pretraining: temperature, crop area and width (6 arms x 3 seeds)")
    ap.add_argument('--digits-crop', action='store_true', help="also the views' smallest crop area on digits (4 arms x 3 seeds)")
    ap.add_argument('--digits-colour', action='store_true', help='also colour strength 1.0 against 0.5 on digits (the demo)')
    ap.add_argument('--digits-finetune', action='store_true', help="also the demo's fine-tuning schedule and batch-norm handling on digits "
                    "(one pretraining, 3 arms x 2 fractions x 3 seeds of fine-tuning)")
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--runs', default=str(ROOT/'runs'/'recipe_study'))
    args = ap.parse_args()
    st = Study(args)
    if st.out.exists():   # resume: keep the finished arms
        import json
        old = json.loads(st.out.read_text())
        # the arms made before `ran_on` was kept per arm ran where the file's machine says: that record stays
        st.res['machine_of_earlier_arms'] = old.get('machine_of_earlier_arms', old.get('machine'))
        for study in MAIN_MEASURE:
            st.res[study] = old.get(study, {})
            if f'{study}_chosen' in old: st.res[f'{study}_chosen'] = old[f'{study}_chosen']
    st.distill()
    if args.pretraining: st.pretraining()
    if args.pretrain_cpu: st.pretrain_cpu()
    if args.digits_colour: st.digits_colour()
    if args.digits_crop: st.digits_crop()
    if args.digits_finetune: st.digits_finetune()
    # every arm was saved when it finished (`record`, or kept as diverged): a resumed run that trained nothing leaves the file,
    # and its machine and wall time, as they were
    st.log(f'done: {st.out}' if st.saved else f'nothing new: {st.out} is unchanged')


if __name__ == '__main__':
    main()
