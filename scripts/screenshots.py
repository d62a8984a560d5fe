"""Screenshots of the web studio for the docs, taken from a throwaway studio with realistic data.

    .venv/bin/python scripts/screenshots.py           # docs/*.png, light, and docs/*-dark.png
    .venv/bin/python scripts/screenshots.py --serve   # the seeded studio stays up (to look around)

Sets up a fresh data folder (a temporary STUDIO_DATA_DIR: migrate, bootstrap the user ``demo``),
serves it with gunicorn on a free port, seeds experiments and runs through the SDK (metrics over
200 steps, Markdown descriptions, a failed, a canceled and two running runs, a sweep with child
runs, a submitted script run), saves a shared custom view in a real browser, then writes
full-page screenshots (1400 px wide) to docs/*.png. Nothing outside the temporary folder and docs/
is written: static files are collected into the temporary folder too. Chromium is Debian's
(/usr/bin/chromium, or STUDIO_CHROMIUM), launched as the browser tests do; never `playwright
install`.
"""

from __future__ import annotations

import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from playwright.sync_api import Page, sync_playwright

from runs.sdk import Experiment, Run, ScriptRunConfig, Workspace

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent
CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [  # as in tests/browser/conftest.py
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
USERNAME, PASSWORD = "demo", "demo-password-1"
WORKSPACE = "default"
VIEWPORT = {"width": 1400, "height": 900}
MAX_FULL_PAGE_BYTES = 600 * 1024  # larger full-page shots are retaken as the viewport only
SDK_ENV = ("STUDIO_URL", "STUDIO_TOKEN", "STUDIO_WORKSPACE")  # would override the config file
STEPS = 200

# The server's settings: the project's, with static files collected into the temporary folder
# (so neither the repository's staticfiles/ nor a stale copy of it is used).
SETTINGS_MODULE = "screenshot_settings"
SETTINGS_TEXT = """\
from pathlib import Path

from studio.settings import *  # noqa: F403

STATIC_ROOT = Path({static_root!r})
"""


# -- the throwaway studio ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(tmp: Path) -> dict[str, str]:
    settings_dir = tmp / "settings"
    settings_dir.mkdir(exist_ok=True)
    static_root = tmp / "static"
    static_root.mkdir(exist_ok=True)
    (settings_dir / f"{SETTINGS_MODULE}.py").write_text(SETTINGS_TEXT.format(static_root=str(static_root)))
    env = {key: value for key, value in os.environ.items() if key not in SDK_ENV and key != "DATABASE_URL"}
    env.update(
        STUDIO_DATA_DIR=str(tmp / "data"),
        DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
        PYTHONPATH=os.pathsep.join([str(settings_dir), str(ROOT)]),
        DEBUG="False",
    )
    env.pop("STUDIO_MEDIA_ROOT", None)
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


@contextmanager
def studio_server(tmp: Path) -> Iterator[tuple[str, Path]]:
    """Migrate, collect static files, bootstrap, and serve; yields (base URL, SDK config path).
    The server is stopped on the way out, whatever happened."""
    env = server_env(tmp)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = tmp / "config.json"
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "collectstatic", "--noinput", "-v0")
    manage(env, "bootstrap", "--username", USERNAME, "--password", PASSWORD, "--config", str(config), "--url", url)
    log_path = tmp / "gunicorn.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), "studio.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_up(url, server, log_path)
            yield url, config
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            server_log = log_path.read_text(errors="replace")
            if "Traceback" in server_log:
                print(f"gunicorn logged errors (the end of its log):\n{server_log[-6000:]}", file=sys.stderr)


def wait_until_up(url: str, server: subprocess.Popen[bytes], log_path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({server.returncode}):\n{log_path.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/accounts/login/", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer on {url} within {timeout:.0f} s")


# -- seeding through the SDK ------------------------------------------------------------------


@dataclass
class Seeded:
    detail_run: str = ""  # a completed run with a rich description
    script_run: str = ""
    sweep_children: list[str] = field(default_factory=list)
    running: list[Run] = field(default_factory=list)  # left Running for the screenshots, ended after
    view_url: str = ""  # the shared view saved for the runs list screenshot


RESNET_DESCRIPTION = """\
## ResNet-18 on MNIST

A **ResNet-18** adapted to 28×28 grayscale digits: first convolution 3×3, no max-pool. It is the
reference the smaller CNNs in this experiment are measured against.

### Setup

- optimizer: SGD, momentum 0.9, Nesterov
- schedule: cosine decay from `lr=0.1` over 200 steps, 5 warm-up steps
- augmentation: random crop (padding 2) and rotations up to ±10°
- batch size 256 on one GPU

```python
model = torchvision.models.resnet18(num_classes=10)
model.conv1 = nn.Conv2d(1, 64, kernel_size=3, padding=1, bias=False)
model.maxpool = nn.Identity()
```

### Results

Validation accuracy **99.4%** (train 99.6%), loss 0.048; no sign of over-fitting.

Next: label smoothing 0.1, and compare against `cnn-batchnorm`.
"""


def describe(title: str, summary: str, bullets: list[str], code: str) -> str:
    items = "\n".join(f"- {item}" for item in bullets)
    return f"## {title}\n\n{summary}\n\n### Changes\n\n{items}\n\n```python\n{code}\n```\n"


def log_curves(
    run: Run, rng: random.Random, *, steps: int, start: float, floor: float, best_acc: float, tau: float
) -> None:
    """loss: exponential decay to a floor with noise; accuracy: rises to best_acc with noise."""
    for step in range(steps):
        decay = math.exp(-step / tau)
        loss = floor + (start - floor) * decay
        loss *= 1 + rng.gauss(0, 0.06)
        accuracy = best_acc - (best_acc - 0.1) * decay - abs(rng.gauss(0, 0.003 + 0.02 * decay))  # at most best_acc
        run.log("loss", round(max(loss, 1e-4), 5), step=step)
        run.log("accuracy", round(min(max(accuracy, 0.0), 1.0), 5), step=step)
        if step % 10 == 0:
            val = floor * 1.3 + (start - floor) * decay * 1.05 + abs(rng.gauss(0, 0.02))
            run.log("val_loss", round(val, 5), step=step)


TRAIN_PY = '''\
"""A tiny stand-in for a training script: prints epochs and logs a metric."""

import math
import os
import random
import time

from runs.sdk import Run

EPOCHS = 25
run = Run.get_context()
rng = random.Random(7)
print("Loading MNIST: 60000 train / 10000 test images", flush=True)
print("Model: cnn-small (3 conv layers, 1.2M parameters), lr=0.01, batch size 128", flush=True)
for epoch in range(1, EPOCHS + 1):
    loss = 0.05 + 2.2 * math.exp(-epoch / 6) * (1 + rng.gauss(0, 0.05))
    accuracy = 0.99 - 0.88 * math.exp(-epoch / 5)
    run.log("loss", round(loss, 4), step=epoch)
    run.log("accuracy", round(accuracy, 4), step=epoch)
    seconds = 11.2 + rng.random()
    print(f"epoch {epoch:2d}/{EPOCHS}  loss={loss:.4f}  accuracy={accuracy:.4f}  {seconds:.1f}s/epoch", flush=True)
    time.sleep(0.05)
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.pt", "wb") as model:
    model.write(os.urandom(4096))
print("Saved outputs/model.pt", flush=True)
'''


def seed(config: Path, seeded: Seeded) -> None:
    """Experiments and runs, through the SDK; what the screenshots need goes into ``seeded``."""
    for name in SDK_ENV:
        os.environ.pop(name, None)
    rng = random.Random(2026)
    ws = Workspace.from_config(str(config))
    authors = ["ana.lopez", "kenji.sato", "priya.nair"]

    def props(i: int) -> dict[str, str]:
        return {"author": authors[i % len(authors)], "git_commit": f"{rng.getrandbits(28):07x}"}

    # mnist-cnn: the vision team's runs
    mnist = Experiment(ws, "mnist-cnn")
    completed = [
        ("baseline-cnn", 2.3, 0.09, 0.982, 30.0, {}, "Baseline CNN", "Two conv layers, no regularisation."),
        ("cnn-dropout-0.3", 2.3, 0.07, 0.987, 35.0, {}, "Dropout", "Adds dropout after each block."),
        ("cnn-batchnorm", 2.3, 0.05, 0.991, 25.0, {"quality": "good"}, "BatchNorm", "Batch normalisation."),
    ]
    for i, (name, start, floor, acc, tau, extra, title, summary) in enumerate(completed):
        description = describe(
            title,
            summary,
            ["conv 32 → 64 → 128", f"lr {0.01 * (i + 1):.2f}", "10 epochs"],
            f"train(model, epochs=10, lr={0.01 * (i + 1):.2f})",
        )
        tags = {"team": "vision", "dataset": "mnist", **extra}
        with mnist.start_logging(display_name=name, description=description, tags=tags, properties=props(i)) as run:
            log_curves(run, rng, steps=STEPS, start=start, floor=floor, best_acc=acc, tau=tau)
    with mnist.start_logging(
        display_name="resnet18-mnist",
        description=RESNET_DESCRIPTION,
        tags={"team": "vision", "dataset": "mnist", "quality": "fantastic run", "model": "resnet18"},
        properties={"author": "ana.lopez", "git_commit": "3f9c2ab", "gpu": "A100"},
    ) as run:
        log_curves(run, rng, steps=STEPS, start=2.4, floor=0.03, best_acc=0.995, tau=22.0)
        seeded.detail_run = run.id
    failed = mnist.start_logging(
        display_name="cnn-lr-1.0",
        description="## Learning rate 1.0\n\nToo high on purpose: checking that the divergence guard fires.",
        tags={"team": "vision", "dataset": "mnist", "quality": "diverged"},
        properties=props(4),
    )
    for step in range(60):
        failed.log("loss", round(2.3 + step * 0.08 * (1 + rng.gauss(0, 0.2)), 4), step=step)
        failed.log("accuracy", round(max(0.0, 0.12 - step * 0.001 + rng.gauss(0, 0.01)), 4), step=step)
    failed.fail(
        error_details="Loss diverged at step 60 (loss=7.12 > 3 × initial loss); training stopped.",
        error_code="LossDiverged",
    )
    canceled = mnist.start_logging(
        display_name="cnn-wide",
        description="## Wide CNN\n\n- 4× the channels\n- canceled: the GPU was needed for the sweep",
        tags={"team": "vision", "dataset": "mnist"},
        properties=props(5),
    )
    log_curves(canceled, rng, steps=80, start=2.3, floor=0.06, best_acc=0.988, tau=30.0)
    canceled.flush()
    canceled.cancel()
    running = mnist.start_logging(
        display_name="cnn-augment",
        description="## Heavier augmentation\n\n- elastic distortions\n- still training",
        tags={"team": "vision", "dataset": "mnist"},
        properties=props(6),
    )
    log_curves(running, rng, steps=120, start=2.3, floor=0.05, best_acc=0.99, tau=30.0)
    running.flush()
    seeded.running.append(running)

    # bert-finetune: the NLP team's runs
    bert = Experiment(ws, "bert-finetune")
    nlp = [
        ("bert-base-sst2", "sst2", 0.69, 0.18, 0.927, 40.0, {}),
        ("distilbert-sst2", "sst2", 0.69, 0.24, 0.905, 35.0, {}),
        ("roberta-base-imdb", "imdb", 0.69, 0.14, 0.951, 45.0, {"quality": "fantastic run"}),
    ]
    for i, (name, dataset, start, floor, acc, tau, extra) in enumerate(nlp):
        description = describe(
            name,
            f"Fine-tuning on **{dataset.upper()}**, max length 128.",
            ["AdamW, lr 2e-5, linear warm-up 10%", "batch size 32", "3 epochs"],
            f'model = AutoModelForSequenceClassification.from_pretrained("{name.rsplit("-", 1)[0]}")',
        )
        tags = {"team": "nlp", "dataset": dataset, **extra}
        with bert.start_logging(display_name=name, description=description, tags=tags, properties=props(i)) as run:
            log_curves(run, rng, steps=STEPS, start=start, floor=floor, best_acc=acc, tau=tau)
    running = bert.start_logging(
        display_name="bert-large-sst2",
        description="## BERT large\n\n- lr 1e-5\n- gradient accumulation 4",
        tags={"team": "nlp", "dataset": "sst2"},
        properties=props(7),
    )
    log_curves(running, rng, steps=90, start=0.69, floor=0.15, best_acc=0.935, tau=40.0)
    running.flush()
    seeded.running.append(running)

    # hyperparameter-sweep: a parent with a child run per learning rate
    sweep = Experiment(ws, "hyperparameter-sweep")
    rates = ["0.1", "0.03", "0.01", "0.003"]
    with sweep.start_logging(
        display_name="lr-sweep-cifar10",
        description=describe(
            "Learning-rate sweep",
            "ResNet-20 on CIFAR-10, one child run per learning rate.",
            [f"lr {lr}" for lr in rates],
            'parent.create_children(tag_key="lr", tag_values=["0.1", "0.03", "0.01", "0.003"])',
        ),
        tags={"team": "vision", "dataset": "cifar10"},
        properties={"author": "kenji.sato", "git_commit": "b71e04d"},
    ) as parent:
        children = parent.create_children(tag_key="lr", tag_values=rates)
        best: tuple[str, float] | None = None
        for child, lr in zip(children, rates, strict=True):
            with child:
                child.display_name = f"resnet20-lr-{lr}"
                child.set_tags({"team": "vision", "dataset": "cifar10"})
                child.add_properties({"learning_rate": lr, "author": "kenji.sato", "git_commit": "b71e04d"})
                quality = 1 - abs(math.log10(float(lr)) + 1.6) / 2  # best near lr 0.025
                floor = 0.25 + 0.5 * (1 - quality)
                acc = 0.93 - 0.25 * (1 - quality)
                log_curves(child, rng, steps=STEPS, start=2.3, floor=floor, best_acc=acc, tau=20 / float(lr) ** 0.3)
            final = floor
            if best is None or final < best[1]:
                best = (child.id, final)
            seeded.sweep_children.append(child.id)
        if best is not None:
            parent.tag("best_child", best[0])
            parent.log("best_loss", best[1])

    # a submitted script run, with its output in logs/std_log.txt
    source = config.parent / "train-src"
    source.mkdir(exist_ok=True)
    (source / "train.py").write_text(TRAIN_PY)
    script = ScriptRunConfig(source_directory=str(source), script="train.py", display_name="cnn-small-script")
    submitted = mnist.submit(script, tags={"team": "vision", "dataset": "mnist"})
    submitted.wait_for_completion(show_output=False)
    seeded.script_run = submitted.id


# -- the browser --------------------------------------------------------------------------------


def log_in(page: Page, url: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/w/{WORKSPACE}/runs/**")


def save_shared_view(page: Page, url: str) -> None:
    params = {
        "q": "tags.team = vision",
        "cols": "name,status,experiment,metrics.loss,metrics.accuracy.max,tags.dataset",
        "sort": "-metrics.accuracy.max",
    }
    page.goto(f"{url}/w/{WORKSPACE}/runs/?{urlencode(params)}")
    page.get_by_text("Save as a new view…").click()
    page.get_by_label("View name").fill("Vision team")
    page.get_by_label("Share with the workspace").check()
    page.get_by_role("button", name="Save as a new view").click()
    page.wait_for_url("**/runs/?view=*")


def wait_for_charts(page: Page) -> None:
    """Every [data-chart] element has its uPlot chart (or the page has none)."""
    page.wait_for_function(
        "document.querySelectorAll('[data-chart]').length > 0 && "
        "document.querySelectorAll('[data-chart] .uplot').length >= document.querySelectorAll('[data-chart]').length"
    )
    page.wait_for_timeout(300)  # let the canvases paint


def shoot(page: Page, path: str, name: str, *, charts: bool = False, url: str) -> None:
    if page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches"):
        name = name.replace(".png", "-dark.png")
    page.goto(f"{url}{path}")
    page.wait_for_load_state("networkidle")
    if charts:
        wait_for_charts(page)
    target = DOCS / name
    page.screenshot(path=str(target), full_page=True)
    if target.stat().st_size > MAX_FULL_PAGE_BYTES:
        page.screenshot(path=str(target), full_page=False)
    print(f"  {target.relative_to(ROOT)} ({target.stat().st_size // 1024} KB)")


def take_screenshots(url: str, seeded: Seeded) -> None:
    for scheme in ("light", "dark"):
        take_screenshots_in(url, seeded, scheme)


def take_screenshots_in(url: str, seeded: Seeded, scheme: str) -> None:
    """The docs' screenshots in the ``scheme`` the browser prefers (the studio follows it): light
    ones as docs/NAME.png, dark ones as docs/NAME-dark.png."""
    DOCS.mkdir(exist_ok=True)
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        raise SystemExit(f"Chromium is missing at {CHROMIUM}: run scripts/ensure-browser.sh")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, color_scheme=scheme)
            context.set_default_timeout(20_000)
            page = context.new_page()
            log_in(page, url)
            if not seeded.view_url:
                save_shared_view(page, url)
                seeded.view_url = page.url.removeprefix(url)
            view_url = seeded.view_url
            base = f"/w/{WORKSPACE}"
            shoot(page, view_url, "runs-list.png", url=url)
            shoot(page, f"{base}/runs/{seeded.detail_run}/", "run-details.png", url=url)
            shoot(page, f"{base}/runs/{seeded.detail_run}/metrics/", "run-metrics.png", charts=True, url=url)
            shoot(page, f"{base}/runs/{seeded.script_run}/outputs/?file=logs/std_log.txt", "run-logs.png", url=url)
            compare = urlencode(
                {"runs": ",".join(seeded.sweep_children[:3]), "metric": "loss", "property": "learning_rate"}
            )
            shoot(page, f"{base}/compare/?{compare}", "compare.png", charts=True, url=url)
            shoot(page, f"{base}/experiments/", "experiments.png", url=url)
        finally:
            browser.close()


def main() -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="studio-screenshots-", ignore_cleanup_errors=True) as name:
        tmp = Path(name)
        with studio_server(tmp) as (url, config):
            print(f"studio on {url} (data in {tmp})")
            seeded = Seeded()
            try:
                seed(config, seeded)
                print(f"seeded in {time.monotonic() - started:.0f} s; taking screenshots")
                if "--serve" in sys.argv:
                    print(f"serving {url} (log in as {USERNAME} / {PASSWORD}); Ctrl-C stops it", flush=True)
                    while True:
                        time.sleep(3600)
                take_screenshots(url, seeded)
            except KeyboardInterrupt:
                pass
            finally:
                for run in seeded.running:  # end them while the server still answers
                    try:
                        run.complete()
                    except Exception as error:  # the screenshots are what matters here
                        print(f"could not end run {run}: {error}")
    print(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
