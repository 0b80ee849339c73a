"""Predictions from a run folder: `load_classifier` + `predict` on PNG files match the test-set evaluation of the same pixels;
`simclr-nb predict` prints and writes CSV; the exported student matches the PyTorch one within 1e-5."""
import importlib.util, json, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from PIL import Image
from simclr_nb.data import load_dataset
from simclr_nb.evaluate import extract_features
from simclr_nb.models import build_encoder, ClassifierNet, save_checkpoint
from simclr_nb.predict import load_classifier, predict, predict_cmd, export_classifier, load_exported, find_checkpoint

BIN = Path(sys.executable).parent
SPEC = dict(depth=18, width=0.125, sk=False, small_images=True, in_channels=1)

@pytest.fixture(scope='module')
def run(tmp_path_factory):
    "A run folder holding a distilled student with random weights (BN statistics moved off their defaults), and 6 test PNGs"
    d = tmp_path_factory.mktemp('run')
    torch.manual_seed(0)
    m = ClassifierNet(build_encoder(SPEC), 10).eval()
    data = load_dataset('digits')
    with torch.no_grad():   # a nearest-class-mean classifier on the random encoder's features: varied, partly right predictions
        f = extract_features(m.encoder, data.train_x, size=12); mu = f.mean(0)
        w = torch.stack([(f[data.train_y == c] - mu).mean(0) for c in range(10)])
        m.classifier.weight.copy_(w / w.norm(dim=1, keepdim=True) / (f - mu).norm(dim=1).mean() * 4)
        m.classifier.bias.copy_(-m.classifier.weight @ mu)
    save_checkpoint(d/'distill_small_10pct_seed1.pth', m, spec=SPEC, n_classes=10, image_size=12, stage='distill', tau=1.0)
    save_checkpoint(d/'distill_small_10pct_seed0.pth', m, spec=SPEC, n_classes=10, image_size=12, stage='distill', tau=1.0)
    save_checkpoint(d/'distill_small_1pct_seed0.pth', m, spec=SPEC, n_classes=10, image_size=12, stage='distill', tau=1.0)
    (d/'config.json').write_text(json.dumps(dict(dataset='digits', image_size=12)))
    files = []
    for i in range(6):
        files.append(d/'shots'/f'{i}.png'); files[-1].parent.mkdir(exist_ok=True)
        Image.fromarray(data.test_x[i, 0].numpy()).save(files[-1])
    return d, files, data

def test_default_checkpoint_and_stage_prefix(run):
    d, _, _ = run
    assert find_checkpoint(d).name == 'distill_small_10pct_seed0.pth'          # most labels, lowest seed
    assert find_checkpoint(d, 'distill_small_1pct').name == 'distill_small_1pct_seed0.pth'
    with pytest.raises(FileNotFoundError, match='there are: distill_small_10pct_seed0'): find_checkpoint(d, 'finetune')

def test_predict_on_pngs_matches_test_set_predictions(run):
    d, files, data = run
    model = load_classifier(d)
    assert model.meta['image_size'] == 12 and model.meta['in_channels'] == 1 and model.meta['classes'][3] == '3'
    df = predict(model, files)
    ref = extract_features(model, data.test_x[:6], size=12).softmax(1)        # 8 px digits resized to 12 as in evaluation
    assert np.abs(df[model.meta['classes']].values - ref.numpy()).max() < 1e-6
    assert df['class'].tolist() == [str(int(i)) for i in ref.argmax(1)]
    assert len(set(df['class'])) > 1                                           # the model is not constant
    acc = (extract_features(model, data.test_x, size=12).argmax(1) == data.test_y).float().mean()
    assert acc > 0.2, f"the fixture's classifier is at chance ({acc:.2f}) on the digits test images"   # measured 0.31; 6 PNGs are too few to judge it
    assert list(df.index) == [str(f) for f in files]

def test_predict_cmd_prints_and_writes_csv(run, tmp_path, capsys):
    d, files, _ = run
    assert predict_cmd([str(d), str(files[0].parent), '--csv', str(tmp_path/'out.csv')]) == 0
    out = capsys.readouterr().out
    assert out.startswith('distill_small_10pct_seed0 (distill), 6 image(s):') and '0.png' in out
    csv = pd.read_csv(tmp_path/'out.csv', index_col=0)
    assert list(csv.columns[:2]) == ['class', 'probability'] and len(csv) == 6
    assert np.allclose(csv.iloc[:, 2:].values.sum(1), 1, atol=1e-4)
    with pytest.raises(FileNotFoundError, match='No checkpoint for stage'): predict_cmd([str(d), str(files[0]), '--stage', 'finetune'])

def test_console_script_predict(run):
    d, files, _ = run
    r = subprocess.run([str(BIN/'simclr-nb'), 'predict', str(d), str(files[0]), str(files[1])], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert '2 image(s)' in r.stdout and '1.png' in r.stdout
    r = subprocess.run([str(BIN/'simclr-nb'), 'predict', str(d), str(files[0]), '--stage', 'finetune'], capture_output=True, text=True)
    assert r.returncode == 2 and 'error: No checkpoint for stage' in r.stderr and 'Traceback' not in r.stderr, r.stderr

@pytest.mark.parametrize('ext', ['.pt2', '.onnx'])
def test_exported_student_matches(run, tmp_path, ext):
    if ext == '.onnx' and not all(importlib.util.find_spec(m) for m in ('onnx', 'onnxscript', 'onnxruntime')):
        pytest.skip('ONNX export needs onnx, onnxscript and onnxruntime (pip install onnx onnxscript onnxruntime)')
    d, _, data = run
    model = load_classifier(d)
    path = export_classifier(model, tmp_path/f'student{ext}')
    x = extract_features(torch.nn.Identity(), data.test_x[:19], size=12)       # another batch size than the traced one
    with torch.no_grad(): want = model(x)
    got = load_exported(path)(x)
    assert got.shape == want.shape and (got - want).abs().max().item() < 1e-5
    assert json.loads(Path(str(path) + '.json').read_text())['image_size'] == 12
