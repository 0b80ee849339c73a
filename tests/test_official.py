"""The official SimCLRv2 checkpoints: the layout of all 13 configurations against the reference, and the round trip kit ->
official variables -> kit for R50 1x without and with SK (as a dict of numpy arrays always; as a real TF1 checkpoint where
TensorFlow is installed)."""
import importlib.util, os, subprocess, sys
from pathlib import Path
import numpy as np, pytest, torch
from torch import nn
from simclr_nb.models import build_encoder, ProjectionHead, ContrastiveNet, load_checkpoint
from simclr_nb.official import (OFFICIAL_CONFIGS, official_spec, official_layout, kit_to_official, official_to_kit, read_official,
                                convert_official, load_official, MaxPool2dSame, use_tf_padding_, import_official_cmd)

BIN = Path(sys.executable).parent
# ../shared/simclrv2-reference.md: encoder parameters (conv kernels + BN gamma/beta), millions; projection head by width
REFERENCE_M = {'r50_1x_sk0': 23.51, 'r50_1x_sk1': 35.22, 'r50_2x_sk0': 93.91, 'r50_2x_sk1': 140.31, 'r101_1x_sk0': 42.50,
               'r101_1x_sk1': 64.66, 'r101_2x_sk0': 169.77, 'r101_2x_sk1': 257.13, 'r152_1x_sk0': 58.14, 'r152_1x_sk1': 88.94,
               'r152_2x_sk0': 232.25, 'r152_2x_sk1': 353.40, 'r152_3x_sk1': 794.70}
HEAD_M = {1: 8.66, 2: 34.10, 3: 76.31}
PARAMS = ('kernel', 'gamma', 'beta')

def test_thirteen_configurations():
    assert sorted(OFFICIAL_CONFIGS) == sorted(REFERENCE_M)

@pytest.mark.parametrize('name', sorted(REFERENCE_M))
def test_layout_names_and_shapes(name):
    lay = official_layout(name)
    m = lambda pre: round(sum(int(np.prod(s)) for k, s in lay.items() if k.startswith(pre) and k.rsplit('/', 1)[1] in PARAMS) / 1e6, 2)
    assert m('base_model/') == REFERENCE_M[name]
    assert m('head_contrastive/') == HEAD_M[OFFICIAL_CONFIGS[name]['width']]
    for kind in ('conv2d', 'batch_normalization'):
        layers = {k.split('/')[1] for k in lay if k.startswith(f'base_model/{kind}')}
        assert layers == {kind} | {f'{kind}_{i}' for i in range(1, len(layers))}   # _N suffixes without gaps
    w, sk = OFFICIAL_CONFIGS[name]['width'], OFFICIAL_CONFIGS[name]['sk']
    assert lay['base_model/conv2d/kernel'] == ((3, 3, 3, 32 * w) if sk else (7, 7, 3, 64 * w))
    assert lay['head_contrastive/nl_0/dense/kernel'] == (2048 * w, 2048 * w) and lay['head_contrastive/nl_2/dense/kernel'] == (2048 * w, 128)
    assert 'head_contrastive/nl_2/batch_normalization/beta' not in lay and 'head_contrastive/nl_1/batch_normalization/beta' in lay
    assert lay['head_supervised/linear_layer/dense/kernel'] == (2048 * w, 1000)

def test_first_block_builds_its_shortcut_first():
    lay = official_layout('r50_1x_sk0')
    assert [lay[f'base_model/conv2d_{i}/kernel'] for i in (1, 2, 3, 4)] == [(1, 1, 64, 256), (1, 1, 64, 64), (3, 3, 64, 64), (1, 1, 64, 256)]
    lay = official_layout('r50_1x_sk1')
    assert [lay[f'base_model/conv2d_{i}/kernel'] for i in range(3, 9)] == [(1, 1, 64, 256), (1, 1, 64, 64), (3, 3, 64, 128),
                                                                           (1, 1, 64, 32), (1, 1, 32, 128), (1, 1, 64, 256)]

def _random_kit(name, seed=0, width=None):
    torch.manual_seed(seed)
    enc = build_encoder(dict(official_spec(name), **({'width': width} if width else {}))); head = ProjectionHead(enc.num_features, 3); cls = nn.Linear(enc.num_features, 7)
    for m in list(enc.modules()) + list(head.modules()):
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            m.running_mean.normal_(0, 0.1); m.running_var.uniform_(0.5, 2); m.weight.data.uniform_(0.5, 1.5)
            if m.bias is not None: m.bias.data.normal_(0, 0.1)
    return ContrastiveNet(enc, head).eval(), cls

def _noisy(v):
    out = dict(v, global_step=np.array(7))
    for k in list(v)[:4]: out['ema_model/' + k] = v[k] + 1; out[k + '/Momentum'] = v[k] * 0
    return out

def _check_equal(model, cls, back):
    x = torch.rand(2, 3, 64, 64)
    for a, b in ((model.encoder, back['encoder']), (model.head, back['head']), (cls, back['classifier'])):
        sa, sb = a.state_dict(), b.state_dict()
        assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    with torch.no_grad():
        assert torch.equal(model(x), ContrastiveNet(back['encoder'], back['head'])(x))
        assert torch.equal(cls(model.encoder(x)), back['classifier'](back['encoder'](x)))

@pytest.fixture(scope='module', params=['r50_1x_sk0', 'r50_1x_sk1'])
def kit(request):
    model, cls = _random_kit(request.param)
    return request.param, model, cls, kit_to_official(model.encoder, model.head, cls)

@pytest.fixture(scope='module', params=['r50_1x_sk0', 'r50_1x_sk1'])
def small(request):
    "The same architectures at width 1/4 (16x fewer weights): for the slower file and command-line tests"
    model, cls = _random_kit(request.param, width=0.25)
    return request.param.replace('_1x_', '_0.25x_'), model, cls, kit_to_official(model.encoder, model.head, cls)

def test_round_trip_numpy_dict(kit, tmp_path):
    name, model, cls, v = kit
    assert {k: tuple(a.shape) for k, a in v.items()} == official_layout(name, n_classes=7)
    back = official_to_kit(_noisy(v))
    assert back['spec'] == official_spec(name)
    _check_equal(model, cls, back)
    np.savez(tmp_path/'v.npz', **_noisy(v))                                   # the .npz form of the same layout
    _check_equal(model, cls, official_to_kit(read_official(tmp_path/'v.npz')))

def test_round_trip_tf1_checkpoint(small, tmp_path):
    if importlib.util.find_spec('tensorflow') is None: pytest.skip("TensorFlow not installed (pip install 'simclr_nb[official]')")
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    import tensorflow as tf
    name, model, cls, v = small
    with tf.Graph().as_default():
        tv = {k: tf.compat.v1.Variable(a, name=k) for k, a in _noisy(v).items()}
        with tf.compat.v1.Session() as s:
            s.run(tf.compat.v1.global_variables_initializer()); tf.compat.v1.train.Saver(tv).save(s, str(tmp_path/'model.ckpt-100'))
    assert (tmp_path/'checkpoint').exists()
    _check_equal(model, cls, official_to_kit(read_official(tmp_path)))
    out = convert_official(tmp_path/'model.ckpt-100', tmp_path/'pretrain.pth')
    ck = load_checkpoint(out)
    assert ck['stage'] == 'pretrain' and ck['official']['config'] == name

def test_errors_name_the_problem(small):
    _, _, _, v = small
    bad = dict(v); bad['base_model/conv2d_1/kernel'], bad['base_model/conv2d_2/kernel'] = v['base_model/conv2d_2/kernel'], v['base_model/conv2d_1/kernel']
    with pytest.raises(ValueError, match='conv2d_1/kernel: shape .* does not fit'): official_to_kit(bad)
    with pytest.raises(ValueError, match='does not know: head_supervised/extra/kernel'):
        official_to_kit(dict(v, **{'head_supervised/extra/kernel': np.zeros((2, 2))}))
    with pytest.raises(ValueError, match="no variable 'base_model/batch_normalization_5/gamma'"):
        official_to_kit({k: a for k, a in v.items() if k != 'base_model/batch_normalization_5/gamma'})

def test_tf_same_max_pool():
    t = torch.arange(36.).reshape(1, 1, 6, 6)
    assert MaxPool2dSame()(t)[0, 0].tolist() == [[14, 16, 17], [26, 28, 29], [32, 34, 35]]
    if importlib.util.find_spec('tensorflow'):
        import tensorflow as tf
        a = torch.randn(2, 3, 112, 112)
        want = tf.nn.max_pool2d(a.permute(0, 2, 3, 1).numpy(), 3, 2, 'SAME').numpy().transpose(0, 3, 1, 2)
        assert np.array_equal(MaxPool2dSame()(a).numpy(), want)

def test_console_script(tmp_path):
    model, cls = _random_kit('r50_1x_sk1', width=0.25)
    np.savez(tmp_path/'v.npz', **kit_to_official(model.encoder, model.head, cls))
    r = subprocess.run([str(BIN/'simclr-nb'), 'import-official', str(tmp_path/'v.npz'), str(tmp_path/'ft.pth'), '--stage', 'finetune'],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert 'r50_0.25x_sk1, stage finetune' in r.stdout
    clf = load_official(tmp_path/'ft.pth')
    assert isinstance(clf.encoder.stem[-1], MaxPool2dSame)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad(): assert torch.equal(clf(x), cls(use_tf_padding_(model).encoder(x)))
    with pytest.raises((FileNotFoundError, ValueError), match='No TensorFlow checkpoint|Reading a TensorFlow checkpoint needs'):
        import_official_cmd([str(tmp_path/'nothing'), str(tmp_path/'x.pth')])
