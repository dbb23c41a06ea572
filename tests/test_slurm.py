"""`snakemake --profile slurm` on a real one-node Slurm cluster started on this machine.

The fixture installs Debian's slurm-wlm and munge when missing, then starts its own munged,
slurmctld and slurmd (private socket, ports, state and spool directories under a temporary
directory, accounting off, two fake GPUs declared in gres.conf) and stops exactly those
processes, by pid, at the end. A Slurm already running on the machine is left alone: the test
cluster talks only to itself.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
PARTITION = "jaflowq"
NODE = "jaflow1"
GPU_TYPE = "tiny"
GPU_RULES = {"train", "select_checkpoint", "merge_moe", "jglue", "mtbench_answer", "mtbench_judge"}

# Targets run through Slurm and compared with a local run (file -> what must be identical): the
# demo's data, a LoRA run with checkpoint selection (train and select_checkpoint are GPU rules)
# and a mergekit MoE (merge_moe, a GPU rule too). Extend as needed (evaluations, "all"): every
# GPU rule among the jobs must show its GPU request in Slurm.
TARGETS = {
    "results/slurm/tiny/data/instructions.jsonl": "*",
    "results/slurm/datasets/demo_mix/train.jsonl": "*",
    "results/slurm/datasets/demo_mix/validation.jsonl": "*",
    "results/slurm/datasets/demo_mix/manifest.json": "*",
    "results/slurm/models/tuned": "*.safetensors",  # logs and trainer state hold timings
    "results/slurm/models/moe": "*.safetensors",
}


def write_test_config(tiny_model, tiny_tokenizer_dir, path: Path) -> Path:
    """The demo's datasets; two tiny Llamas (made by the fixtures), a short LoRA run, an MoE."""
    from jaflow.tiny import build_model

    demo = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    expert = build_model("llama", tiny_tokenizer_dir, path.parent / "expert", seed=1)
    short = {
        "lora_r": 4,
        "learning_rate": 0.001,
        "max_steps": 2,
        "eval_steps": 1,
        "logging_steps": 1,
        "gradient_accumulation_steps": 1,
        "max_length": 64,
    }
    config = {
        "name": "slurm",
        "seed": demo["seed"],
        "datasets": demo["datasets"],
        "models": {
            "base": {"pretrained": str(tiny_model("llama"))},
            "expert": {"pretrained": str(expert)},
            "tuned": {"from": "base", "method": "lora", "dataset": "demo_mix", "train": short},
            "moe": {
                "base": "base",
                "experts": ["base", "expert"],
                "gate_mode": "random",
                "dtype": "float32",
            },
        },
    }
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


DEBIAN_PACKAGES = ["slurm-wlm", "munge"]
DAEMONS = ["munged", "slurmctld", "slurmd"]


def ensure_installed() -> None:
    if all(shutil.which(d) for d in DAEMONS):
        return
    if os.geteuid() != 0:
        pytest.fail(f"Slurm is not installed and installing {DEBIAN_PACKAGES} needs root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *DEBIAN_PACKAGES],
        check=True,
        env=env,
        capture_output=True,
    )
    missing = [d for d in DAEMONS if not shutil.which(d)]
    assert not missing, f"installed {DEBIAN_PACKAGES} but {missing} are still missing"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, what: str, timeout: float = 60.0, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    pytest.fail(f"timed out waiting for {what}\n{tail}")


@dataclass
class SlurmCluster:
    root: Path
    env: dict[str, str]
    procs: list[subprocess.Popen] = field(default_factory=list)

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, check=check)

    def job(self, jobid: str) -> dict[str, str]:
        """`scontrol show job` as key -> value (finished jobs stay for MinJobAge seconds)."""
        out = self.run("scontrol", "show", "job", "-o", jobid).stdout
        return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)

    def stop(self) -> None:
        for proc in reversed(self.procs):  # slurmd, slurmctld, then munged: only ours, by pid
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def write_config(root: Path, user: str, ctld_port: int, slurmd_port: int) -> Path:
    host = socket.gethostname().split(".")[0]
    devices = root / "dev"
    devices.mkdir()
    for i in range(2):  # gres/gpu wants device files; a null device per fake GPU
        dev = devices / f"gpu{i}"
        try:
            os.mknod(dev, 0o666 | 0o020000, os.makedev(1, 3))
        except OSError:
            dev.touch()  # not root: slurmd logs a warning but still counts the GPU
    (root / "gres.conf").write_text(
        f"AutoDetect=off\nNodeName={NODE} Name=gpu Type={GPU_TYPE} File={devices}/gpu[0-1]\n"
    )
    conf = root / "slurm.conf"
    # SlurmdParameters=config_overrides: the node is what the config says (32 CPUs, 512 GB,
    # 2 GPUs), so the profile's real-cluster requests fit unchanged on this small machine.
    conf.write_text(f"""\
ClusterName=jaflowtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.socket
CredType=cred/munge
SlurmUser={user}
SlurmdUser={user}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=3600
ReturnToService=2
GresTypes=gpu
NodeName={NODE} NodeHostname={host} NodeAddr=127.0.0.1 CPUs=32 RealMemory=512000 Gres=gpu:{GPU_TYPE}:2 State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
""")
    return conf


@pytest.fixture(scope="module")
def slurm_cluster():
    ensure_installed()
    user = getpass.getuser()
    # munged insists that every directory above its socket is executable by all.
    root = Path(tempfile.mkdtemp(prefix="jaflow-slurm-", dir="/tmp"))
    root.chmod(0o755)
    for d in ("munge", "state", "spool", "log", "bin"):
        (root / d).mkdir()
    (root / "munge").chmod(0o755)
    conf = write_config(root, user, free_port(), free_port())
    # The slurm-jobstep plugin strips SLURM_* (SLURM_CONF too) before its inner `srun`; a real
    # cluster has /etc/slurm/slurm.conf, ours lives here, so jobs find srun through a wrapper.
    srun = root / "bin" / "srun"
    srun.write_text(f'#!/bin/sh\nexport SLURM_CONF="{conf}"\nexec "{shutil.which("srun")}" "$@"\n')
    srun.chmod(0o755)
    env = dict(os.environ, SLURM_CONF=str(conf), PATH=f"{root / 'bin'}:{os.environ['PATH']}")
    for var in list(env):
        if var.startswith(("SLURM_JOB", "SBATCH_", "SRUN_")):
            del env[var]
    cluster = SlurmCluster(root, env)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    socket_path = root / "munge" / "munge.socket"

    def start(*cmd: str, name: str) -> None:
        out = open(root / "log" / f"{name}.out", "w")
        cluster.procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT))

    try:
        start(
            "munged",
            "-F",
            f"--socket={socket_path}",
            f"--key-file={key}",
            f"--log-file={root}/log/munged.log",
            f"--pid-file={root}/munge/munged.pid",
            f"--seed-file={root}/munge/seed",
            name="munged",
        )
        wait_for(socket_path.exists, "munged's socket", log=root / "log" / "munged.out")
        start("slurmctld", "-D", "-f", str(conf), name="slurmctld")
        wait_for(
            lambda: cluster.run("scontrol", "ping", check=False).stdout.count("UP"),
            "slurmctld",
            log=root / "log" / "slurmctld.log",
        )
        start("slurmd", "-D", "-N", NODE, "-f", str(conf), name="slurmd")
        wait_for(
            lambda: cluster.run("sinfo", "-h", "-o", "%t", check=False).stdout.strip() == "idle",
            "the node to be idle",
            log=root / "log" / "slurmctld.log",
        )
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def run_snakemake(cluster: SlurmCluster, args: list[str], cwd: Path, extra_env: dict | None = None):
    env = dict(cluster.env, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1", **(extra_env or {}))
    return subprocess.Popen(
        [SNAKEMAKE, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 400) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-6000:]
    return out


# Overrides for a cluster without accounting: squeue instead of sacct, and quick first checks.
SLURM_TEST_FLAGS = [
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "2",
]


def submitted_jobs(log: str) -> list[tuple[str, str, Path]]:
    """(rule, Slurm job id, Slurm log) for every job the plugin submitted through sbatch."""
    found = re.findall(r"submitted with SLURM jobid (\d+) \(log: (\S+)\)", log)
    jobs = []
    for jobid, path in found:
        rule = re.search(r"/rule_([^/]+)/", path).group(1)
        jobs.append((rule, jobid, Path(path)))
    return jobs


def gpu_request(info: dict[str, str]) -> str:
    """What a job asked of GPUs: --gpus shows as TresPerJob, --gres as TresPerNode."""
    return info.get("TresPerJob", "") + info.get("TresPerNode", "")


def digest(path: Path, pattern: str = "*") -> str:
    """sha256 of a file, or of a directory's files matching `pattern` (names and bytes)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob(pattern) if p.is_file())
        assert files, f"no {pattern} in {path}"
        return hashlib.sha256(
            b"".join(p.relative_to(path).as_posix().encode() + p.read_bytes() for p in files)
        ).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tiny_workflow_through_profile_slurm_matches_local_run(
    slurm_cluster, tmp_path, tiny_model, tiny_tokenizer_dir
):
    on_slurm, local = tmp_path / "slurm", tmp_path / "local"
    config = [
        "--configfile",
        str(write_test_config(tiny_model, tiny_tokenizer_dir, tmp_path / "config.yaml")),
    ]
    # Exactly as users type it, from the repository root: ./slurm is the profile.
    slurm_run = run_snakemake(
        slurm_cluster,
        ["--profile", "slurm", *SLURM_TEST_FLAGS, *config, "--directory", str(on_slurm), *TARGETS],
        cwd=REPO,
        extra_env={"JAFLOW_SLURM_PARTITION": PARTITION},
    )
    local_run = run_snakemake(
        slurm_cluster, ["-c1", *config, "--directory", str(local), *TARGETS], cwd=REPO
    )
    try:
        log = finish(slurm_run)
        finish(local_run)
    finally:
        for proc in (slurm_run, local_run):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert re.search(r"Using profiles? slurm\b", log), log[
        -3000:
    ]  # (and the workflow's profiles/default)

    jobs = submitted_jobs(log)
    rules = {rule for rule, _, _ in jobs}
    assert {
        "tiny_instructions",
        "sample_dataset",
        "train",
        "select_checkpoint",
        "merge_moe",
    } <= rules, log[-4000:]
    for rule, jobid, slurm_log in jobs:
        info = slurm_cluster.job(jobid)
        assert info["JobState"] == "COMPLETED", (rule, info)
        assert info["Partition"] == PARTITION
        assert info["WorkDir"] == str(on_slurm)
        # The plugin's per-job Slurm log holds the job's own Snakemake run of this rule.
        assert slurm_log.is_relative_to(on_slurm / "logs" / "slurm"), slurm_log
        assert f"rule {rule}:" in slurm_log.read_text()
        gres = gpu_request(info)
        if rule in GPU_RULES:
            assert "gpu" in gres, (rule, info)
        else:
            assert "gpu" not in gres, (rule, info)

    for target, pattern in TARGETS.items():
        assert digest(on_slurm / target, pattern) == digest(local / target, pattern), target

    # A second run of the finished workflow submits nothing.
    again = finish(
        run_snakemake(
            slurm_cluster,
            [
                "--profile",
                "slurm",
                *SLURM_TEST_FLAGS,
                *config,
                "--directory",
                str(on_slurm),
                *TARGETS,
            ],
            cwd=REPO,
            extra_env={"JAFLOW_SLURM_PARTITION": PARTITION},
        )
    )
    assert "Nothing to be done" in again
    assert not submitted_jobs(again)


PROBE_SNAKEFILE = """
rule all:
    input: "train.txt", "jglue.txt", "sample_dataset.txt"

rule train:
    output: "train.txt"
    log: "logs/train.log"
    resources: gpu=1, nodes=1
    shell: "echo gpus=${{CUDA_VISIBLE_DEVICES:-none}} > {output}"

rule jglue:
    output: "jglue.txt"
    log: "logs/jglue.log"
    shell: "echo gpus=${{CUDA_VISIBLE_DEVICES:-none}} > {output}"

rule sample_dataset:
    output: "sample_dataset.txt"
    log: "logs/sample_dataset.log"
    shell: "echo gpus=${{CUDA_VISIBLE_DEVICES:-none}} > {output}"
"""


def test_profile_gpu_requests_are_accepted_by_sbatch(slurm_cluster, tmp_path):
    """The profile's GPU resources, as --gpus (default) and as --gres, reach jobs that see a GPU."""
    runs = {}
    for flag in ("gpus", "gres"):
        work = tmp_path / flag
        work.mkdir()
        (work / "Snakefile").write_text(PROBE_SNAKEFILE)
        runs[flag] = run_snakemake(
            slurm_cluster,
            ["--profile", str(REPO / "profiles" / "slurm"), *SLURM_TEST_FLAGS],
            cwd=work,
            extra_env={"JAFLOW_SLURM_GPU_FLAG": flag, "JAFLOW_SLURM_GPU_MODEL": GPU_TYPE},
        )
    try:
        logs = {flag: finish(proc) for flag, proc in runs.items()}
    finally:
        for proc in runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for flag, log in logs.items():
        work = tmp_path / flag
        jobs = {rule: slurm_cluster.job(jobid) for rule, jobid, _ in submitted_jobs(log)}
        assert set(jobs) == {"train", "jglue", "sample_dataset"}
        for rule in ("train", "jglue"):
            assert jobs[rule]["JobState"] == "COMPLETED"
            assert gpu_request(jobs[rule]) == f"gres:gpu:{GPU_TYPE}:1", (flag, rule, jobs[rule])
        assert jobs["train"]["NumCPUs"] == "8" and jobs["train"]["TimeLimit"] == "1-00:00:00"
        assert not gpu_request(jobs["sample_dataset"])
        for rule in ("train", "jglue"):  # Slurm bound one of the two fake GPUs to the job
            assert re.fullmatch(r"gpus=[01]", (work / f"{rule}.txt").read_text().strip()), rule
        assert (work / "sample_dataset.txt").read_text().strip() == "gpus=none"


def test_multi_node_training_through_srun(slurm_cluster, tmp_path, tiny_model):
    """`nodes > 1`: one torchrun per node through srun, c10d rendezvous on the first node.

    The test cluster is one slurmd (Debian's slurmd is built without --enable-multiple-slurmd),
    so the job is one Slurm node with 2 tasks and JAFLOW_NNODES=2: the launcher's srun starts 2
    torchrun agents (as it would on 2 nodes, one each), which meet at the rendezvous and train
    one run of world size 2 over gloo. The loss curve equals a one-process run at the same
    global batch."""
    sys.path.insert(0, str(REPO / "tests"))
    from train_world import make_job, write_dataset

    from jaflow.train.launch import run

    data = write_dataset(tmp_path / "data")
    world = {"llama": tiny_model("llama"), "data": data}
    common = dict(
        max_steps=3,
        eval_steps=3,
        logging_steps=1,
        per_device_train_batch_size=4,
        global_batch_size=8,
    )
    two = make_job(world, tmp_path / "two", "full", **common)
    (tmp_path / "two").mkdir()
    job_file = tmp_path / "two" / "submitted.json"
    job_file.write_text(two.to_json(), encoding="utf-8")
    script = tmp_path / "job.sh"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} -m jaflow.train.launch {job_file} 1\n")
    script.chmod(0o755)
    env = dict(
        slurm_cluster.env,
        PYTHONPATH=str(REPO / "src"),
        OMP_NUM_THREADS="1",
        JAFLOW_NNODES="2",
        JAFLOW_RDZV_PORT=str(free_port()),
    )
    out = subprocess.run(
        [
            "sbatch",
            "--parsable",
            "-p",
            PARTITION,
            "-N1",
            "-n2",
            "-c1",
            "--wait",
            "-o",
            str(tmp_path / "slurm-%j.out"),
            str(script),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    jobid = out.stdout.strip().split(";")[0]
    log = next(tmp_path.glob("slurm-*.out")).read_text(errors="replace")
    assert out.returncode == 0, (out.stderr, log[-5000:])
    info = slurm_cluster.job(jobid)
    assert info["JobState"] == "COMPLETED" and info["NumTasks"] == "2", info
    assert "rank 0/2: two (full)" in log and "rank 1/2: two (full)" in log, log[-3000:]
    launched = next(line for line in log.splitlines() if "launching 2 node(s)" in line)
    assert (
        "srun --nodes=1 --ntasks=2 --ntasks-per-node=2 --overlap" in launched
        and "--rdzv_backend c10d" in launched
    )
    state = json.loads((tmp_path / "two" / "trainer_state.json").read_text())
    layout = state["stateful_callbacks"]["BatchLayout"]["args"]
    assert layout["world_size"] == 2 and layout["gradient_accumulation_steps"] == 1
    one = make_job(world, tmp_path / "one", "full", **common)
    os.environ.pop("JAFLOW_NNODES", None)
    run(one, 1)
    a = [
        e["loss"]
        for e in json.loads((tmp_path / "one" / "trainer_state.json").read_text())["log_history"]
        if "loss" in e
    ]
    b = [e["loss"] for e in state["log_history"] if "loss" in e]
    assert len(a) == len(b) == 3 and max(abs(x - y) for x, y in zip(a, b, strict=True)) < 2e-4, (
        a,
        b,
    )
