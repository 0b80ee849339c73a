"""Checks of bench/quality.py's judging of a preset that borrows a finished run (`choices_from`): what it names as the
difference between the two runs, and the supervised-on-100% values it borrows. Trains nothing (a second or two)."""
import importlib.util, json
from pathlib import Path
import pytest

_spec = importlib.util.spec_from_file_location('quality', Path(__file__).parents[1]/'bench'/'quality.py')
quality = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(quality)

def acc(**rows):
    "`{row: {tag: {seed: percent}}}` -> an `accuracy_percent` table as quality.py writes it"
    return {m: {tag: dict(mean=sum(vals.values()) / len(vals), values={str(s): v for s, v in vals.items()}) for tag, vals in t.items()}
            for m, t in rows.items()}

@pytest.fixture
def bench(tmp_path, monkeypatch):
    "A `cpu_distill` Bench in --rejudge mode whose borrowed quality_cpu.json is a small hand-made file in tmp_path"
    monkeypatch.setattr(quality, 'RESULTS', tmp_path)
    b = quality.Bench('cpu_distill', 'cpu', None, False, rejudge=True)
    theirs = dict(b.base.to_dict(), distill_epochs=2, self_distill=True)
    del theirs['compile']   # a setting the borrowed run predates
    (tmp_path/'quality_cpu.json').write_text(json.dumps(dict(complete=True, config=theirs, selection={}, accuracy_percent=acc(
        supervised={'10pct': {0: 84.0, 1: 85.0, 2: 84.5}, '100pct': {0: 89.5, 1: 89.0, 2: 89.6}},
        finetune={'10pct': {0: 89.2, 1: 89.3, 2: 89.7}}, distill_small={'10pct': {0: 85.8, 1: 86.2, 2: 87.0}}))))
    b.res = dict(config=dict(b.base.to_dict(), self_distill=False), selection={}, accuracy_percent=acc(
        finetune={'10pct': {0: 89.2, 1: 89.3, 2: 89.7}}, distill_small={'10pct': {0: 87.9, 1: 88.0, 2: 88.3}}))
    b.timing = False
    return b

def test_names_only_the_settings_that_differ_for_each_row(bench):
    assert bench.res['config']['distill_epochs'] == 10
    bench.judge()
    rows = {r['row']: r for r in bench.res['against_borrowed']['rows']}
    # the teachers share every setting that decides them: neither the student's epochs, nor which students run
    # (self_distill), nor a setting newer than the borrowed run is a difference for them
    assert rows['finetune']['name'].endswith('the same settings, another pretraining')
    assert rows['distill_small']['name'].endswith('distill_epochs 10 against 2')
    assert rows['distill_small']['difference'] == pytest.approx((88.067 - 86.333) / 100, abs=1e-4)

def test_small_student_judged_against_the_borrowed_supervised_on_all_labels(bench):
    bench.judge()
    t = next(t for t in bench.res['targets'] if t['target'] == 'student_vs_supervised_all_labels' and t['row'] == 'distill_small')
    assert t['name'].endswith('(of quality_cpu.json)')
    assert t['difference'] == pytest.approx((88.067 - 89.367) / 100, abs=1e-4)   # unpaired: means of both
    assert t['met']
    c = next(c for c in bench.res['claims'] if c['claim'] == 'small_student_near_teacher')   # claims are selected by key too
    assert c['fraction'] == 0.1 and c['outcome'] == 'holds'
    # no student row at 10% -> no such target, borrowed or not
    del bench.res['accuracy_percent']['distill_small']
    bench.judge()
    assert not [t for t in bench.res['targets'] if t.get('target') == 'student_vs_supervised_all_labels']

def test_fine_tuned_row_of_a_target_is_chosen_on_validation_not_test(bench):
    "Layer 1 has the higher test mean, layer 2 the higher validation mean: the 0.2% target reads layer 2"
    bench.res['accuracy_percent'] = acc(supervised={'0.2pct': {0: 67.0, 1: 69.0, 2: 71.0}},
                                        finetune={'0.2pct': {0: 78.0, 1: 79.0, 2: 80.0}},
                                        finetune_l2={'0.2pct': {0: 77.0, 1: 78.0, 2: 79.0}})
    bench.res['valid_accuracy_percent'] = {'finetune': {'0.2pct': dict(mean=76.0)}, 'finetune_l2': {'0.2pct': dict(mean=77.5)}}
    assert bench.fine_tuned_row(0.002) == ('finetune_l2', 'row chosen on validation accuracy (mean over the seeds)')
    bench.judge()
    t = next(t for t in bench.res['targets'] if t['target'] == 'finetune_over_supervised' and t['fraction'] == 0.002)
    assert t['row'] == 'finetune_l2' and t['name'].startswith('fine-tuned (finetune_l2)') and t['row_chosen_by'].startswith('row chosen on validation')
    assert t['difference'] == pytest.approx(0.09, abs=1e-6) and not t['met']   # 10, 9, 8 points: missed (layer 1's 11, 10, 9 would meet it)
    # a JSON without validation values per row (written before they were kept) reads the row of the run's own ft_layer,
    # even where another row has the higher test mean, and says so
    del bench.res['valid_accuracy_percent']
    bench.res['accuracy_percent']['finetune_l2']['0.2pct']['mean'] = 85.0
    assert bench.res['config']['ft_layer'] == 1
    row, how = bench.fine_tuned_row(0.002)
    assert row == 'finetune' and 'the row of its ft_layer setting, not one chosen on the test set' in how
    bench.res['config']['ft_layer'] = 2
    assert bench.fine_tuned_row(0.002)[0] == 'finetune_l2'
    bench.res['config']['ft_layer'] = 0                      # no layer-0 row: the first there is, still not the test's best
    assert bench.fine_tuned_row(0.002)[0] == 'finetune'

def test_finetuned_vs_linear_target_reads_the_row_chosen_on_validation(bench):
    "Layer 0 has the higher validation mean, layer 1 the higher test mean: 'fine-tuned >= linear' reads layer 0 and misses"
    bench.res['accuracy_percent'] = acc(linear={'10pct': {0: 85.0, 1: 86.0, 2: 87.0}},
                                        finetune={'10pct': {0: 88.0, 1: 89.0, 2: 90.0}},
                                        finetune_l0={'10pct': {0: 84.0, 1: 85.5, 2: 86.0}})
    bench.res['valid_accuracy_percent'] = {'finetune': {'10pct': dict(mean=84.0)}, 'finetune_l0': {'10pct': dict(mean=85.0)}}
    bench.judge()
    t = next(t for t in bench.res['targets'] if t['target'] == 'finetune_vs_linear' and t['fraction'] == 0.1)
    assert t['row'] == 'finetune_l0' and t['name'].startswith('fine-tuned (finetune_l0)') and t['row_chosen_by'].startswith('row chosen on validation')
    assert t['difference'] == pytest.approx(-2.5 / 300, abs=1e-6) and not t['met']   # paired: -1, -0.5, -1 points (layer 1 would meet it)

def test_a_preset_whose_students_would_share_a_run_folder_is_refused(monkeypatch):
    "Both students, no distill_grid: the self-distilled student's folder name would be the smaller one's"
    monkeypatch.setitem(quality.PRESETS, 'no_grid', dict(quality.PRESETS['smoke'], distill_grid={}))
    with pytest.raises(SystemExit, match='distill_grid'): quality.Bench('no_grid', 'cpu', None, False, rejudge=True)
    quality.Bench('smoke', 'cpu', None, False, rejudge=True)   # its grid names distill_init: accepted

def test_a_setting_newer_than_the_borrowed_run_counts_at_its_default(bench):
    """The borrowed run predates `pretrain_crop_min_area`: it cropped at the paper's 0.08, today's default (the run folders'
    rule). A run here at 0.2 differs from it, and the rows say so; at 0.08 they do not."""
    jf = quality.RESULTS/'quality_cpu.json'
    theirs = json.loads(jf.read_text()); del theirs['config']['pretrain_crop_min_area']; jf.write_text(json.dumps(theirs))
    bench.res['config']['pretrain_crop_min_area'] = 0.2
    bench.judge()
    rows = {r['row']: r for r in bench.res['against_borrowed']['rows']}
    assert rows['finetune']['name'].endswith('pretrain_crop_min_area 0.2 against 0.08')
    bench.res['config']['pretrain_crop_min_area'] = 0.08
    bench.judge()
    rows = {r['row']: r for r in bench.res['against_borrowed']['rows']}
    assert rows['finetune']['name'].endswith('the same settings, another pretraining')


def test_a_cached_reference_at_another_step_count_is_kept_aside_not_used(tmp_path):
    "A reference cached before it trained the kit's step count (500 against 518 at 0.2%) is moved out, not mixed in"
    from types import SimpleNamespace
    cache, logs = tmp_path/'reference.json', []
    done = {'0': dict(steps=500, test_accuracy=70.0), '1': dict(steps=518, test_accuracy=71.0)}
    cache.write_text(json.dumps(done))
    quality.Bench._supersede_reference(SimpleNamespace(log=logs.append), cache, done, 0, 518)
    assert done == {'1': dict(steps=518, test_accuracy=71.0)} and json.loads(cache.read_text()) == done
    assert json.loads((tmp_path/'reference.superseded.json').read_text()) == [dict(seed=0, steps=500, test_accuracy=70.0)]
    assert '500 steps' in logs[0] and '518' in logs[0]


def test_a_diverging_setting_is_recorded_not_the_end_of_the_benchmark(tmp_path, monkeypatch):
    """A grid setting or a probe whose loss becomes NaN (`NonFiniteLoss`) is a result: the grid chooses among the others and
    keeps it as diverged, the probe is kept as diverged; a grid that diverges everywhere stops with a message naming it."""
    from types import SimpleNamespace
    monkeypatch.setattr(quality, 'RESULTS', tmp_path)
    b = quality.Bench('smoke', 'cpu', str(tmp_path/'runs'), False, rejudge=True)
    b.p = dict(b.p, ft_grid=dict(finetune_base_lr=(0.02, 0.1, 0.3)), sup_grid=dict(supervised_lr=(1e-2,)))
    b.res, b.timing, b.log = dict(selection={}, phases_done=[]), False, lambda *a: None
    def run(cfg, folder, stages, share_from=()):   # stands in for the pipeline: rate 0.3 and frozen batch norm diverge
        if cfg.finetune_base_lr > 0.2 or cfg.ft_bn == 'frozen':
            raise quality.NonFiniteLoss(f"{stages[0]}: the training loss became nan at epoch 1 of 3, step 2 of 4")
        valid = {0.02: 0.7, 0.1: 0.8}[cfg.finetune_base_lr] if stages == ('finetune',) else 0.6
        return SimpleNamespace(metrics={quality.stage_key(stages[0], cfg.label_fractions[0], s): dict(valid_accuracy=valid, accuracy=0.5)
                                        for s in cfg.seeds})
    b.run = run
    b.select(0.1)
    sel = b.res['selection']['10pct']['finetune']
    assert sel['chosen'] == {'finetune_base_lr': 0.1}
    assert [g['valid_accuracy'] for g in sel['grid']] == [0.7, 0.8, None] and 'loss became nan' in sel['grid'][2]['diverged']
    # a probe that diverges is kept as such, beside the chosen setting's validation values
    main = b.folder(0.1, 'final', {'finetune_base_lr': 0.1, 'supervised_lr': 1e-2}); main.mkdir(parents=True)
    (main/'metrics.json').write_text(json.dumps({f'finetune_10pct_seed{s}': dict(valid_accuracy=0.8, accuracy=0.5) for s in (0, 1)}))
    b.probe(0.1, {'ft_bn': 'frozen'})
    p = b.res['probes'][-1]
    assert p['outcome'] == 'diverged' and p['text'].startswith('diverged: finetune') and p['valid_chosen'] == {0: 0.8, 1: 0.8}
    b.probe(0.1, {'finetune_base_lr': 0.02})   # one that trains is judged as before
    assert b.res['probes'][-1]['outcome'] == 'does not hold' and b.res['probes'][-1]['difference'] == pytest.approx(-0.1)
    assert all(p['wall_s'] >= 0 for p in b.res['probes'])   # each probe keeps its own time (not in the run's wall_s)
    b.p['ft_grid'] = dict(finetune_base_lr=(0.3, 0.5))
    with pytest.raises(SystemExit, match='every finetune setting of the grid diverged'): b.select(0.1)


def test_cpu_trimmed_fixes_the_settings_every_earlier_grid_chose_and_still_chooses_where_they_differed(tmp_path, monkeypatch):
    """`cpu_trimmed` after 8a5d0d5: one fine-tuning schedule and one supervised rate per fraction where every earlier grid chose
    the same (each trained as seed 0, its validation accuracy kept, recorded as the preset's setting), and a real choice on
    validation where the runs differed (the supervised rate at 1%)."""
    from types import SimpleNamespace
    monkeypatch.setattr(quality, 'RESULTS', tmp_path)
    b = quality.Bench('cpu_trimmed', 'cpu', str(tmp_path/'runs'), False, rejudge=True)
    b.res, b.timing, b.log = dict(selection={}, phases_done=[]), False, lambda *a: None
    trained = []
    def run(cfg, folder, stages, share_from=()):
        trained.append((cfg.label_fractions[0], stages[0], cfg.ft_schedule if stages == ('finetune',) else cfg.supervised_lr))
        valid = 0.8 if stages == ('finetune',) else {1e-2: 0.6, 3e-2: 0.7}[cfg.supervised_lr]
        return SimpleNamespace(metrics={quality.stage_key(stages[0], cfg.label_fractions[0], s): dict(valid_accuracy=valid, accuracy=0.5)
                                        for s in cfg.seeds})
    b.run = run
    for f in (0.002, 0.01, 0.1): b.select(f)
    assert trained == [(0.002, 'finetune', 'one_cycle'), (0.002, 'supervised', 1e-2), (0.01, 'finetune', 'cosine'),
                       (0.01, 'supervised', 1e-2), (0.01, 'supervised', 3e-2), (0.1, 'finetune', 'one_cycle'), (0.1, 'supervised', 1e-2)]
    sel = b.res['selection']
    assert sel['0.2pct']['finetune']['chosen_on'].startswith("the preset's one setting") and sel['10pct']['supervised']['grid'][0]['valid_accuracy'] == 0.6
    assert sel['1pct']['supervised']['chosen'] == {'supervised_lr': 3e-2} and sel['1pct']['supervised']['chosen_on'] == 'validation accuracy, seed 0'
    # the full cpu preset keeps its whole grids
    assert len(quality.grid(quality.PRESETS['cpu']['ft_grid'])) == 6 and len(quality.grid(quality.PRESETS['cpu']['sup_grid'])) == 4


def test_rows_name_a_resolved_precision_that_differs_and_compare_with_other_runs(bench, monkeypatch):
    """`precision='auto'` in both configs, bf16 there and fp32 here: not 'the same settings'. A preset's `also_against`
    runs are compared row by row like the borrowed one, paired over the seeds; an unfinished one is a note, not a comparison."""
    jf = quality.RESULTS/'quality_cpu.json'
    theirs = json.loads(jf.read_text()); theirs['precision'] = 'bf16'; jf.write_text(json.dumps(theirs))
    bench.res['precision'] = 'fp32'
    monkeypatch.setitem(bench.p, 'also_against', ('cpu_other', 'cpu_unfinished'))
    (quality.RESULTS/'quality_cpu_other.json').write_text(json.dumps(dict(complete=True, precision='fp32', config=bench.base.to_dict(),
        accuracy_percent=acc(finetune={'10pct': {0: 88.2, 1: 88.8, 2: 89.2}}))))
    (quality.RESULTS/'quality_cpu_unfinished.json').write_text(json.dumps(dict(complete=False, precision='fp32', config=bench.base.to_dict(), accuracy_percent={})))
    bench.res['notes'] = []
    bench.judge()
    rows = {r['row']: r for r in bench.res['against_borrowed']['rows']}
    assert rows['finetune']['name'].endswith("precision fp32 against bf16 (as each machine resolved 'auto')")
    other = bench.res['against_others']['cpu_other']
    assert other['run'] == 'quality_cpu_other.json' and 'cpu_unfinished' not in bench.res['against_others']
    r = next(r for r in other['rows'] if r['row'] == 'finetune')
    assert r['name'].endswith('the same settings, another pretraining')
    assert r['difference'] == pytest.approx(((89.2 - 88.2) + (89.3 - 88.8) + (89.7 - 89.2)) / 300, abs=1e-6)   # paired over seeds
    assert any('cpu_unfinished' in n and 'not a finished run' in n for n in bench.res['notes'])


def test_a_comparison_says_whether_both_sides_share_their_pretraining(bench):
    "A pretraining hard-linked in reports the very same metrics: 'the same pretraining'; any other is 'another', even with equal settings"
    pre = dict(epochs=16, knn_accuracy=0.7955, final_loss=9.44, wall_s=3554.0)
    jf = quality.RESULTS/'quality_cpu.json'
    theirs = json.loads(jf.read_text()); theirs['pretrain'] = pre; jf.write_text(json.dumps(theirs))
    bench.res['pretrain'] = dict(pre)
    bench.judge()
    ab = bench.res['against_borrowed']
    assert ab['same_pretraining'] and ab['note'].startswith('the same pretraining')
    assert {r['row']: r for r in ab['rows']}['finetune']['name'].endswith('the same settings, the same pretraining')
    bench.res['pretrain']['wall_s'] = 3600.0   # run again: the same numbers but its own time
    bench.judge()
    ab = bench.res['against_borrowed']
    assert not ab['same_pretraining'] and ab['note'].startswith('one pretraining on each side')
    assert {r['row']: r for r in ab['rows']}['finetune']['name'].endswith('the same settings, another pretraining')

def test_a_preset_reuses_another_presets_finished_pretraining_only_with_its_settings(tmp_path, monkeypatch):
    "`pretrain_from`: the other preset's pretraining is hard-linked into this run folder, never one trained with other settings"
    monkeypatch.setattr(quality, 'ROOT', tmp_path)
    b = quality.Bench('cpu_long_label_seeds', 'cpu', tmp_path/'runs'/'bench_quality_cpu_long_label_seeds', False, rejudge=True)
    b.res = {}
    with pytest.raises(SystemExit, match='run that first'): b.reuse_pretraining()
    src = tmp_path/'runs'/'bench_quality_cpu_long_seed3'
    (src/'pretrain').mkdir(parents=True)
    (src/'pretrain'/'pretrain.pth').write_bytes(b'weights')
    (src/'pretrain'/'metrics.json').write_text(json.dumps({'pretrain': {'wall_s': 3409.9, 'knn_accuracy': 0.7988}}))
    (src/'encoder_all_labels.json').write_text('{"linear_test": 0.877}')
    b.reuse_pretraining()
    assert (b.out/'pretrain'/'pretrain.pth').read_bytes() == b'weights'
    assert json.loads((b.out/'pretrain'/'metrics.json').read_text())['pretrain']['shared_from'] == str(src/'pretrain')
    assert json.loads((b.out/'encoder_all_labels.json').read_text()) == {'linear_test': 0.877}
    assert b.res['pretrain_from'] == 'cpu_long_seed3'
    other = quality.Bench('cpu_long_label_seeds', 'cpu', tmp_path/'other', False, rejudge=True)
    monkeypatch.setitem(quality.PRESETS['cpu_long_label_seeds'], 'cfg', dict(quality.PRESETS['cpu_long_seed3']['cfg'], temperature=0.2))
    with pytest.raises(SystemExit, match=r'other pretraining settings \(temperature\)'): other.reuse_pretraining()
    # a setting only later stages read (fine-tuning's rate, the students' epochs) does not make the pretraining another one
    later = quality.Bench('cpu_long_label_seeds', 'cpu', tmp_path/'later', False, rejudge=True)
    later.res = {}
    monkeypatch.setitem(quality.PRESETS['cpu_long_label_seeds'], 'cfg',
                        dict(quality.PRESETS['cpu_long_seed3']['cfg'], finetune_base_lr=0.05, distill_epochs=10))
    later.reuse_pretraining()
    assert (later.out/'pretrain'/'pretrain.pth').read_bytes() == b'weights'

def test_a_supervised_row_trained_again_is_not_named_by_a_pretraining(bench, monkeypatch):
    "The baseline reads no pretraining (nor the pretraining's seed): with the same settings it is the same row trained again"
    monkeypatch.setitem(bench.p, 'rows', ('supervised', 'finetune'))
    bench.res['accuracy_percent'].update(acc(supervised={'10pct': {0: 84.4, 1: 85.1, 2: 84.3}}))
    bench.res['config']['seed'] = 3   # another pretraining seed: the fine-tuned row names it, the baseline does not
    bench.judge()
    rows = {r['row']: r for r in bench.res['against_borrowed']['rows']}
    assert rows['supervised']['name'].endswith('the same settings, trained again (it reads no pretraining)')
    assert rows['supervised']['difference'] == pytest.approx((84.6 - 84.5) / 100, abs=1e-4)
    assert 'seed 3 against 0' in rows['finetune']['name']


def test_a_pretraining_resumed_before_the_first_json_keeps_the_earlier_processes_time(tmp_path, monkeypatch):
    """A run stopped during its pretraining has no JSON yet: the process that resumes it starts the run's wall_s from the
    pretraining epochs the earlier processes trained (kept by its checkpoints), not from zero; one found finished (by an
    earlier process, or shared in from a run of the same settings) counts its whole time; another preset's reused by
    `pretrain_from` adds nothing (such a run counts only its own stages)."""
    from types import SimpleNamespace
    monkeypatch.setattr(quality, 'RESULTS', tmp_path)
    b = quality.Bench('smoke', 'cpu', str(tmp_path/'runs'), False, rejudge=True)
    b.res, b.wall_before, b.t0, b.log = dict(notes=[], phases_done=[]), 0.0, quality.time.time(), lambda *a: None
    b.jf = tmp_path/'quality_smoke.json'
    metrics = dict(epochs=1, knn_at_init=0.1, knn_accuracy=0.5, knn_on='valid', final_loss=1.0, wall_s=1300.0, precision='fp32',
                   parameters=10, knn_per_epoch=[0.5], resumed_at_epoch=20, earlier_processes_s=1000.0, wall_s_this_process=300.0)
    monkeypatch.setattr(quality.Bench, 'reuse_pretraining', lambda self: None)   # `pretrain_from`'s sharing: tested on its own below
    for status, pretrain_from, want in (('trained', None, 1000.0), ('reused', None, 1300.0), ('reused', 'cpu', 0.0)):
        monkeypatch.setattr(quality, 'run_pipeline', lambda *a, **k: SimpleNamespace(metrics=dict(pretrain=metrics), status=dict(pretrain=status)))
        b.wall_before, b.res['notes'], b.p = 0.0, [], dict(b.p, pretrain_from=pretrain_from)
        b.pretrain()
        assert b.wall_before == want and want <= json.loads(b.jf.read_text())['wall_s'] < want + 10, (status, b.wall_before)
        assert b.res['pretrain']['resumed_at_epoch'] == 20 and bool(b.res['notes']) == bool(want), b.res['notes']
    # a resumed run (its JSON's wall_s already counts the pretraining) adds nothing more
    b.wall_before = 500.0; b.pretrain(); assert b.wall_before == 500.0


def test_a_pretraining_is_carried_to_another_machine_and_put_back_only_where_it_is_ahead(tmp_path, monkeypatch):
    """`--carry` keeps the settings, splits and newest epoch checkpoint of a run's pretraining in bench/carry/ (git takes it
    to the next machine); the run puts it back only into a run folder that has less of that pretraining (none, or an
    older epoch), never over a newer or finished one."""
    monkeypatch.setattr(quality, 'ROOT', tmp_path); monkeypatch.setattr(quality, 'CARRY', tmp_path/'bench'/'carry')
    with pytest.raises(SystemExit, match='no pretraining checkpoint'): quality.carry_pretraining('cpu_wide_label_seeds', log=lambda *a: None)
    run = tmp_path/'runs'/'bench_quality_cpu_wide_label_seeds'/'pretrain'
    ck = run/'pretrain_state'/'checkpoints'
    ck.mkdir(parents=True); (run/'splits').mkdir()
    (run/'config.json').write_text('{"width": 0.5}'); (run/'splits'/'valid.txt').write_text('1 2 3')
    for e in (9, 10): (ck/f'epoch_{e:04d}.pth').write_bytes(b'epoch %d' % e)
    dst = quality.carry_pretraining('cpu_wide_label_seeds', log=lambda *a: None)
    assert sorted(str(p.relative_to(dst)) for p in dst.rglob('*') if p.is_file()) == [
        'config.json', 'pretrain_state/checkpoints/epoch_0010.pth', 'splits/valid.txt']   # the newest checkpoint only
    # a fresh machine: an empty run folder gets it, and the run resumes at epoch 10
    fresh = tmp_path/'fresh'
    assert quality.put_back_carried('cpu_wide_label_seeds', fresh, log=lambda *a: None)
    assert (fresh/'pretrain'/'pretrain_state'/'checkpoints'/'epoch_0010.pth').read_bytes() == b'epoch 10'
    assert (fresh/'pretrain'/'config.json').read_text() == '{"width": 0.5}'
    assert not quality.put_back_carried('cpu_wide_label_seeds', fresh, log=lambda *a: None)   # the same epoch: nothing to do
    # a run folder that trained further (epoch 11) or finished keeps its own
    (ck/'epoch_0011.pth').write_bytes(b'epoch 11')
    assert not quality.put_back_carried('cpu_wide_label_seeds', log=lambda *a: None)
    older = tmp_path/'older'; (older/'pretrain'/'pretrain_state'/'checkpoints').mkdir(parents=True)
    (older/'pretrain'/'pretrain_state'/'checkpoints'/'epoch_0004.pth').write_bytes(b'epoch 4')
    assert quality.put_back_carried('cpu_wide_label_seeds', older, log=lambda *a: None)   # behind the carried epoch: it is put back
    assert quality._carried_epoch(older/'pretrain') == 10
    done = tmp_path/'done'; (done/'pretrain').mkdir(parents=True); (done/'pretrain'/'pretrain.pth').write_bytes(b'final')
    assert not quality.put_back_carried('cpu_wide_label_seeds', done, log=lambda *a: None)
    # a finished pretraining is carried as its weights and metrics
    (run/'pretrain.pth').write_bytes(b'final'); (run/'metrics.json').write_text('{"pretrain": {}}')
    dst = quality.carry_pretraining('cpu_wide_label_seeds', log=lambda *a: None)
    assert sorted(str(p.relative_to(dst)) for p in dst.rglob('*') if p.is_file()) == ['config.json', 'metrics.json', 'pretrain.pth', 'splits/valid.txt']


def test_a_reused_encoder_check_is_a_phase_done(tmp_path, monkeypatch):
    """A resumed run reuses the encoder check an earlier process wrote (`encoder_all_labels.json` in the run folder); the
    JSON's `phases_done` still lists it, as it lists a reused pretraining (a resumed run once dropped it)."""
    monkeypatch.setattr(quality, 'RESULTS', tmp_path)
    b = quality.Bench('smoke', 'cpu', str(tmp_path/'runs'), False, rejudge=True)
    b.res, b.wall_before, b.t0, b.log = dict(notes=[], phases_done=['pretrain']), 0.0, quality.time.time(), lambda *a: None
    b.jf, b.out = tmp_path/'quality_smoke.json', tmp_path/'run'
    b.out.mkdir()
    (b.out/'encoder_all_labels.json').write_text(json.dumps(dict(n_labeled=5, knn_test=0.5, linear_test=0.6)))
    b.encoder_all_labels()
    saved = json.loads(b.jf.read_text())
    assert saved['phases_done'] == ['pretrain', 'encoder_all_labels'] and saved['encoder_all_labels']['linear_test'] == 0.6


def test_a_preset_reusing_another_pretraining_takes_it_from_the_carry(tmp_path, monkeypatch):
    """On a machine without `cpu_wide_label_seeds`' run folder, `cpu_wide_label_seeds2` (`pretrain_from` it) finds that
    pretraining carried in git, puts it back and hard-links it in: the weights it fine-tunes from are the carried ones."""
    monkeypatch.setattr(quality, 'ROOT', tmp_path); monkeypatch.setattr(quality, 'CARRY', tmp_path/'bench'/'carry')
    carried = tmp_path/'bench'/'carry'/'cpu_wide_label_seeds'/'pretrain'
    carried.mkdir(parents=True)
    (carried/'pretrain.pth').write_bytes(b'final'); (carried/'metrics.json').write_text('{"pretrain": {"wall_s": 9767.0}}')
    b = quality.Bench('cpu_wide_label_seeds2', 'cpu', str(tmp_path/'runs'/'mine'), False, rejudge=True)
    b.res, b.log = {}, lambda *a: None
    b.reuse_pretraining()
    assert (b.out/'pretrain'/'pretrain.pth').read_bytes() == b'final' and b.res['pretrain_from'] == 'cpu_wide_label_seeds'
    assert (tmp_path/'runs'/'bench_quality_cpu_wide_label_seeds'/'pretrain'/'pretrain.pth').exists()   # put back where it belongs
    assert json.loads((b.out/'pretrain'/'metrics.json').read_text())['pretrain']['wall_s'] == 9767.0


def test_stage_seconds_counts_each_trained_stage_once(tmp_path):
    "The time table sums each stage where it trained: a shared copy (`shared_from`) and the pretraining are not counted again"
    def metrics(folder, entries):
        (tmp_path/folder).mkdir(parents=True); (tmp_path/folder/'metrics.json').write_text(json.dumps(entries))
    metrics('0.2pct/final__lr-0.1', {'pretrain': dict(wall_s=900.0), 'finetune_0.2pct_seed0': dict(wall_s=10.0),
                                      'finetune_0.2pct_seed1': dict(wall_s=12.5), 'supervised_0.2pct_seed0': dict(wall_s=4.0)})
    metrics('0.2pct/distill_final__lr-0.1', {'pretrain': dict(wall_s=900.0, shared_from='x'),
                                             'finetune_0.2pct_seed0': dict(wall_s=10.0, shared_from='x'),
                                             'distill_small_0.2pct_seed0': dict(wall_s=200.0), 'distill_small_0.2pct_seed1': dict(wall_s=210.0)})
    metrics('1pct/supervised__lr-0.01', {'supervised_1pct_seed0': dict(wall_s=7.0), 'note': 'no timing here'})
    (tmp_path/'0.2pct'/'reference.json').write_text(json.dumps({'0': dict(wall_s=3.0), '1': dict(wall_s=5.0)}))
    assert quality.stage_seconds(tmp_path) == {
        '0.2pct': {'final/finetune': dict(n=2, wall_s=22.5), 'final/supervised': dict(n=1, wall_s=4.0),
                   'distill_final/distill_small': dict(n=2, wall_s=410.0), 'reference': dict(n=2, wall_s=8.0)},
        '1pct': {'supervised/supervised': dict(n=1, wall_s=7.0)}}


def test_a_grid_may_differ_per_fraction_and_the_smaller_student_run_only_where_asked(tmp_path, monkeypatch):
    """`cpu_trimmed`: the self-distilled student's initialisation fixed per fraction (a grid of one, recorded as the preset's
    setting, not as a choice on validation) and the smaller student at 10% only; a fraction the per-fraction value lacks is
    refused by name, and a value that is not keyed by fraction is the same everywhere."""
    from types import SimpleNamespace
    assert quality.at_fraction({0.002: 'a', 0.1: 'b'}, 0.1) == 'b' and quality.at_fraction(dict(x=(1, 2)), 0.1) == dict(x=(1, 2))
    with pytest.raises(SystemExit, match='no setting for 1%'): quality.at_fraction({0.002: 'a'}, 0.01)
    monkeypatch.setattr(quality, 'RESULTS', tmp_path)
    b = quality.Bench('cpu_trimmed', 'cpu', str(tmp_path/'runs'), False, rejudge=True)
    b.res, b.timing, b.log = dict(selection={}, accuracy_percent={}, phases_done=[], notes=[]), False, lambda *a: None
    ran, epochs = [], {}
    def run(cfg, folder, stages, share_from=()):
        ran.append((cfg.label_fractions[0], folder.name, cfg.seeds, cfg.self_distill, cfg.distill_init))
        epochs[folder.name] = cfg.distill_epochs
        key = 'distill_self' if cfg.self_distill else 'distill_small'
        return SimpleNamespace(metrics={quality.stage_key(key, cfg.label_fractions[0], s): dict(valid_accuracy=0.8, accuracy=0.7 + s / 100)
                                        for s in cfg.seeds})
    b.run = run
    for f in (0.002, 0.1): b.distill(f, b.folder(f, 'final', {}), {})
    grid_runs = [r for r in ran if r[2] == (0,)]
    assert [(f, init) for f, _, _, _, init in grid_runs] == [(0.002, 'random'), (0.1, 'pretrained')]   # one grid entry each
    assert b.res['selection']['0.2pct']['distill_self']['chosen_on'].startswith("the preset's one setting")
    assert [f for f, *_ , sd, _ in ran if not sd] == [0.1]          # the smaller student at 10% only
    # ... for its own number of epochs (`small_cfg`), in a folder of its own that names them; the self-distilled one keeps the preset's
    small = [name for _, name, _, sd, _ in ran if not sd]
    assert small == ['distill_final__distill_epochs-5'] and epochs[small[0]] == 5 and b.base.distill_epochs == 2
    assert {epochs[name] for _, name, _, sd, _ in ran if sd} == {2} and any('distill_epochs=5' in n for n in b.res['notes'])
    assert set(b.res['accuracy_percent']['distill_small']) == {'10pct'} and set(b.res['accuracy_percent']['distill_self']) == {'0.2pct', '10pct'}
    # the cpu preset itself still has both initialisations at every fraction, and both students everywhere
    assert quality.at_fraction(quality.PRESETS['cpu']['distill_grid'], 0.002) == dict(distill_init=('random', 'pretrained'))
