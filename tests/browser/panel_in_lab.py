"""The label-fraction panel in a live JupyterLab, driven by a headless Chromium (`make browser-test`).

A temporary folder gets a notebook that builds `simclr_nb.panels.label_fraction_panel` at a tiny size (300 digits, 8 px).
JupyterLab serves it with a real kernel; Debian's Chromium (`/usr/bin/chromium`, driven by playwright, nothing downloaded)
runs the cell and presses the panel's buttons like a person would:

1. Run: progress shows while it trains (a bar moves, a line names the run by its settings, the stage, epoch and
   batch), the figure is redrawn as stages finish; then the status says 'done', the table shows accuracies in %, the
   figure is a drawn image, and the log shows its newest line. A screenshot of the panel is saved to
   `nbs/images/panel_after_run.png` (or `--screenshot PATH`).
2. A negative number of training images: the red message names it, nothing runs, the controls keep their width.
3. Run with more pretraining epochs, then Stop while it trains: the log says it stopped within 2 s, the status says
   so too, and no fastai "Exception occured" text appears anywhere in the panel.
4. Run again with the first settings: every stage comes from the cache.

Exits 0 when every check passed; prints each check and the time taken. Needs `chromium` (apt) and `playwright` (dev extras).
"""
import argparse, json, os, re, secrets, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')

NOTEBOOK_CELL = """\
from simclr_nb.pipeline import PipelineConfig
from simclr_nb.panels import label_fraction_panel
base = PipelineConfig(pretrain_bs=64, finetune_bs=16, distill_bs=64, supervised_steps=5, student_width=0.0625, valid_fraction=0.2)
panel = label_fraction_panel(root='runs', base=base, device='cpu', dataset='digits', n_train=300, n_test=100, image_size=8,
                             width=0.125, fractions=(0.1, 0.5), seeds=(0, 1), pretrain_epochs=3, finetune_steps=5, distill_epochs=1)
panel"""


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def write_notebook(folder:Path):
    nb = {'cells': [{'cell_type': 'code', 'execution_count': None, 'id': 'panel', 'metadata': {}, 'outputs': [],
                     'source': NOTEBOOK_CELL.splitlines(keepends=True)}],
          'metadata': {'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}}, 'nbformat': 4, 'nbformat_minor': 5}
    (folder/'panel.ipynb').write_text(json.dumps(nb))


def start_lab(folder:Path, port:int, token:str):
    "JupyterLab on `folder`, its settings, workspaces and runtime files inside `folder` (the user's own are not touched)."
    env = {**os.environ, 'JUPYTER_CONFIG_DIR': str(folder/'.jupyter'), 'JUPYTER_RUNTIME_DIR': str(folder/'.runtime'),
           'IPYTHONDIR': str(folder/'.ipython'), 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1',
           'PATH': f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', f'--port={port}', '--ip=127.0.0.1', f'--IdentityProvider.token={token}',
           f'--ServerApp.root_dir={folder}', f'--LabApp.user_settings_dir={folder/".settings"}',
           f'--LabApp.workspaces_dir={folder/".workspaces"}', '--LabApp.news_url=', '--ServerApp.disable_check_xsrf=True']
    if hasattr(os, 'geteuid') and os.geteuid() == 0: cmd.append('--allow-root')   # CI containers run as root
    log = open(folder/'lab.log', 'w')
    proc = subprocess.Popen(['nice', '-n', '5'] + cmd, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f'http://127.0.0.1:{port}'
    for _ in range(600):   # minutes on a busy 2-core machine
        if proc.poll() is not None: raise RuntimeError(f"JupyterLab exited: see {folder/'lab.log'}")
        try:
            urllib.request.urlopen(f'{url}/api/status?token={token}', timeout=2); return proc, url
        except OSError: time.sleep(0.5)
    stop_lab(proc)
    raise RuntimeError('JupyterLab did not answer within 5 minutes')


def stop_lab(proc):
    if proc is None or proc.poll() is not None: return
    os.killpg(proc.pid, signal.SIGTERM)   # the server and the kernels it started (its own session)
    try: proc.wait(20)
    except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL)


class Checks:
    def __init__(self): self.failed, self.t0 = [], time.time()
    def __call__(self, ok, what, detail=''):
        print(f"[{time.time() - self.t0:6.1f} s] {'ok  ' if ok else 'FAIL'} {what}" + (f": {detail}" if detail and not ok else ''), flush=True)
        if not ok: self.failed.append(what)
        return ok


def wait_text(page, selector, pattern, timeout):
    "Poll the text of `selector` until it matches `pattern`; returns (text, seconds waited) or (last text, None)."
    t0, text = time.time(), ''
    while time.time() - t0 < timeout:
        text = page.inner_text(selector)
        if re.search(pattern, text): return text, time.time() - t0
        time.sleep(0.05)
    return text, None


def log_shows_newest_line(page) -> bool:
    "The log box overflows, and its text's bottom edge is in view (the box is scrolled to its newest line)."
    return page.evaluate("""() => {
        const box = document.querySelector('.simclr-log .widget-html-content > div'), pre = box.querySelector('pre');
        const b = box.getBoundingClientRect(), p = pre.getBoundingClientRect();
        return box.scrollHeight > box.clientHeight && p.bottom <= b.bottom + 1 && p.bottom >= b.bottom - 12; }""")


def run_and_watch(page, check):
    "Press Run; watch the progress until the status says done."
    first_src = page.get_attribute('img.simclr-figure', 'src')
    page.click('button.simclr-run')
    seen, t0 = set(), time.time()
    while time.time() - t0 < 600:
        if 'done in' not in page.inner_text('.simclr-status') and page.get_attribute('img.simclr-figure', 'src') != first_src:
            seen.add('figure redrawn while training')
        label = page.inner_text('.simclr-progress')
        if re.search(r'run \d of \d \((pretraining|\d+% labels)\): \S+, epoch \d+/\d+, batch \d+/\d+', label): seen.add('training line')
        if page.evaluate("""() => [...document.querySelectorAll('.simclr-progress .progress-bar')].some(b => {
                const w = parseFloat(b.style.width || b.style.height || '0'); return w > 0 && w < 100; })"""):
            seen.add('bar moving')
        status = page.inner_text('.simclr-status')
        if 'done in' in status or 'Cannot run' in page.inner_text('.simclr-message'): break
        time.sleep(0.1)
    check('training line' in seen, 'progress during the run names the run by its settings, the stage, epoch and batch', str(seen))
    check('bar moving' in seen, 'a progress bar moved during the run', str(seen))
    check('figure redrawn while training' in seen, 'the figure was redrawn before the study finished', str(seen))
    return status


def main(screenshot:Path, keep:bool=False):
    from playwright.sync_api import sync_playwright
    if not Path(CHROMIUM).exists(): sys.exit(f"{CHROMIUM} not found: apt-get install -y chromium (or set CHROMIUM=...)")
    check, folder, proc = Checks(), Path(tempfile.mkdtemp(prefix='simclr_nb_browser_')), None
    try:
        write_notebook(folder)
        token = secrets.token_hex(16)
        proc, url = start_lab(folder, free_port(), token)
        check(True, f'JupyterLab answers at {url}')
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'])
            page = browser.new_page(viewport={'width': 1280, 'height': 1400})
            try: check_panel(page, url, token, check, screenshot)
            except Exception as e:
                check(False, 'the browser session', f'{type(e).__name__}: {e}'.splitlines()[0])
                page.screenshot(path=str(folder/'failure.png')); print(f"the page when it failed: {folder/'failure.png'}")
            finally: browser.close()
    finally:
        stop_lab(proc)
        if check.failed: print(f"JupyterLab's log: {folder/'lab.log'}")
        elif not keep: shutil.rmtree(folder, ignore_errors=True)
    print(f"{'FAILED: ' + ', '.join(check.failed) if check.failed else 'all checks passed'} ({time.time() - check.t0:.0f} s)")
    return 1 if check.failed else 0


def check_panel(page, url, token, check, screenshot):
    page.goto(f'{url}/lab/tree/panel.ipynb?token={token}')
    page.wait_for_selector('.jp-Notebook .jp-Cell .jp-InputArea-editor', timeout=120_000)
    page.wait_for_selector('.jp-StatusBar-TextItem:has-text("Idle")', timeout=120_000)   # the kernel is up
    for _ in range(30):   # Shift+Enter before the notebook is wired to its kernel is lost: press again until the cell is queued
        if page.locator('.jp-Dialog').count(): page.click('.jp-Dialog .jp-mod-accept')     # 'Select Kernel': the notebook's own
        page.click('.jp-Cell .jp-InputArea-editor'); page.keyboard.press('Shift+Enter')
        time.sleep(2)
        if re.search(r'\[(\*|\d+)\]', page.inner_text('.jp-Cell .jp-InputPrompt')): break
    page.wait_for_selector('.simclr-panel', timeout=600_000)   # imports alone took minutes on a 2-core machine shared with other jobs
    check(True, 'the cell ran and the panel is shown')
    check('ready' in page.inner_text('.simclr-status'), 'status: ready')

    status = run_and_watch(page, check)
    check('done in' in status, 'status after Run says done', status)
    text, _ = wait_text(page, '.simclr-table', r'%', 10)
    rows = page.locator('.simclr-table tbody tr').count()
    check(rows == 2 * 2 * 5, 'the table has one row per (fraction, seed, method)', f'{rows} rows')
    check(re.search(r'\d+\.\d%', text) is not None and 'nan' not in text.lower(), 'accuracies in %, no NaN in the table', text[:300])
    w = page.evaluate("() => { const i = document.querySelector('img.simclr-figure'); return i && i.complete ? i.naturalWidth : 0; }")
    check(w >= 400, 'the figure is a drawn image', f'naturalWidth {w}')
    check(log_shows_newest_line(page), 'the log is scrolled to its newest line')
    page.mouse.move(0, 0)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.locator('.simclr-panel').screenshot(path=str(screenshot))
    check(screenshot.stat().st_size > 10_000, f'screenshot saved to {screenshot}')

    page.fill('.simclr-n-train input', '-5'); page.press('.simclr-n-train input', 'Enter')
    page.click('button.simclr-run')
    msg, waited = wait_text(page, '.simclr-message', r'train images must be 0 or more', 10)
    check(waited is not None, 'a negative number of training images is refused with a message', msg)
    color = page.evaluate("() => getComputedStyle(document.querySelector('.simclr-message .widget-html-content > div')).color")
    check(color == 'rgb(176, 0, 32)', 'the message is red', color)
    width = page.evaluate("() => document.querySelector('.simclr-controls').getBoundingClientRect().width")
    check(width >= 350, 'the controls keep their width beside a message', f'{width:.0f} px')
    page.fill('.simclr-n-train input', '300'); page.press('.simclr-n-train input', 'Enter')

    page.fill('.simclr-pretrain-epochs input', '200'); page.press('.simclr-pretrain-epochs input', 'Enter')
    page.click('button.simclr-run')
    _, waited = wait_text(page, '.simclr-progress', r'pretrain, epoch \d+/200', 120)
    check(waited is not None, 'a longer pretraining starts (new settings, nothing reused)')
    page.click('button.simclr-stop')
    log, waited = wait_text(page, '.simclr-log', r'label_fractions: stopped during training', 10)
    check(waited is not None and waited <= 2, 'Stop ends the training within 2 s (the log says so)', f'after {waited} s')
    status, waited = wait_text(page, '.simclr-status', r'stopped after', 10)
    check(waited is not None, 'the status says stopped', status)
    last = log.strip().splitlines()[-1] if log.strip() else ''
    check(last.startswith('label_fractions: stopped during training of pretrain (pretraining)'), "the log's last line says where it stopped", last)
    everything = page.inner_text('.simclr-panel')
    check('Exception occured' not in everything and 'Traceback' not in everything, 'no fastai exception text in the panel')
    page.wait_for_selector('button.simclr-run:not([disabled])', timeout=30_000)   # after the figure's last redraw
    check(page.is_enabled('button.simclr-run') and not page.is_enabled('button.simclr-stop'), 'Run is enabled again, Stop disabled')

    page.fill('.simclr-pretrain-epochs input', '3'); page.press('.simclr-pretrain-epochs input', 'Enter')
    page.click('button.simclr-run')
    status, waited = wait_text(page, '.simclr-status', r'done in', 120)
    check(waited is not None and '0 stage(s) trained, 21 reused' in status, 'Run again with the first settings: everything from the cache', status)
    other = page.evaluate("""() => [...document.querySelectorAll('.jp-OutputArea-output')].filter(o => !o.querySelector('.simclr-panel'))
                                    .map(o => o.innerText.trim()).filter(t => t).join('\\n')""")
    check(not re.search(r"^\[\d+, [\d.]+", other, re.M), "no fastai epoch lines printed below the panel", other[:300])
    if other: print(f"(the cell's other output, from the imports: {other[:200]!r})")


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--screenshot', type=Path, default=REPO/'nbs'/'images'/'panel_after_run.png')
    ap.add_argument('--keep', action='store_true', help='keep the temporary folder (notebook, runs, lab.log)')
    a = ap.parse_args()
    sys.exit(main(a.screenshot.resolve(), a.keep))
