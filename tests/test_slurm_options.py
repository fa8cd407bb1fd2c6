"""The Slurm executor's resources and bad input, without a cluster: time formats, which source
wins, the checks made before anything is submitted, the job script of --dry-run, and
passwords kept out of argv, job files and messages."""
from __future__ import annotations


import pytest
import yaml
from helpers_tiny import write_tiny_fashion_mnist

from benchmark.cli import main
from benchmark.sweeps.cells import SweepError, parse_sweep
from benchmark.sweeps.server import server_command, server_env
from benchmark.sweeps.slurm_options import SlurmError, SlurmOptions, parse_minutes, preflight, resolve
from benchmark.sweeps.store import StoreError, move_password_to_env, redact
from tasks.vision.fashion_mnist import FashionMNIST


@pytest.mark.parametrize("text, minutes", [(30, 30), (0.5, 1), ("45", 45), ("10:30", 11), ("01:30:00", 90),
                                           ("1-12", 36 * 60), ("2-00:30", 48 * 60 + 30), ("0-0:0:59", 1)])
def test_time_limits_in_slurm_formats_become_whole_minutes(text, minutes):
    assert parse_minutes(text, "x") == minutes


@pytest.mark.parametrize("bad", ["soon", "1h", -5, 0, "00:00", True])
def test_a_time_limit_that_is_not_one_is_named(bad):
    with pytest.raises(SlurmError, match="time"):
        parse_minutes(bad, "x")


def test_the_command_line_beats_the_sweep_which_beats_the_recipe():
    tasks = [FashionMNIST("paper", None)]  # the recipe: 4 CPUs, 1 GPU, 16 GiB; a cell ~720 min
    options, estimate = resolve(tasks, {}, {})
    assert (options.cpus_per_task, options.gpus_per_task, options.mem, options.time) == (4, 1, "16384M", 1440)
    assert estimate == 720
    options, _ = resolve(tasks, {"partition": "gpu", "time": "1-00:00", "mem": "32g"}, {})
    assert (options.partition, options.time, options.mem, options.cpus_per_task) == ("gpu", 1440, "32G", 4)
    options, _ = resolve(tasks, {"partition": "gpu", "qos": "low"}, {"partition": "long", "cpus_per_task": 8,
                                                                    "account": None})
    assert (options.partition, options.qos, options.cpus_per_task, options.account) == ("long", "low", 8, None)


def test_a_time_limit_shorter_than_one_cell_is_refused_before_anything():
    with pytest.raises(SlurmError) as error:
        preflight(SlurmOptions(time=30), estimate=720, dry_run=True)
    assert "time limit 30 min is shorter than one cell" in str(error.value) and "--time 720" in str(error.value)


def test_no_sbatch_on_path_is_one_line_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    with pytest.raises(SlurmError) as error:
        preflight(SlurmOptions(time=10), estimate=5)
    message = str(error.value)
    assert message.startswith("sbatch not found on PATH") and "\n" not in message and "login node" in message


def test_the_sweep_file_slurm_key_is_validated(tmp_path):
    data = write_tiny_fashion_mnist(tmp_path / "fm")
    base = {"name": "s", "profile": "smoke", "seeds": [0], "ratios": [0.5],
            "tasks": [{"name": "fashion-mnist", "data_dir": str(data)}], "methods": ["random"]}
    assert parse_sweep({**base, "slurm": {"partition": "gpu", "time": "02:00:00"}}).slurm["partition"] == "gpu"
    with pytest.raises(SweepError) as error:
        parse_sweep({**base, "slurm": {"partitoin": "gpu", "mem": "lots"}})
    assert "unknown key 'partitoin'" in str(error.value)
    with pytest.raises(SweepError, match="mem 'lots' is not a Slurm memory size"):
        parse_sweep({**base, "slurm": {"mem": "lots"}})
    # the slurm key is not part of any cell: the same cells with or without it
    assert [c.id for c in parse_sweep(base).cells()] == [c.id for c in parse_sweep({**base, "slurm": {"qos": "x"}}).cells()]


def test_dry_run_prints_the_job_array_and_submits_nothing(tmp_path, capsys, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.chdir(tmp_path)
    data = write_tiny_fashion_mnist(tmp_path / "fm")
    sweep = {"name": "dry", "profile": "smoke", "seeds": [0, 1], "ratios": [0.5],
             "tasks": [{"name": "fashion-mnist", "data_dir": str(data)}], "methods": ["random", "magnitude"],
             "slurm": {"partition": "cpu", "time": 20}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sweep))
    code = main(["run", "s.yaml", "--executor", "slurm", "--dry-run", "--max-in-flight", "2", "--mem", "3G",
                 "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    out = capsys.readouterr().out
    assert code == 0
    assert "#SBATCH --array=0-1%2" in out and "#SBATCH --partition=cpu" in out and "#SBATCH --time=20" in out
    assert "#SBATCH --mem=3G" in out and "#SBATCH --signal=USR2@90" in out
    assert f"#SBATCH --output={tmp_path}/slurm-logs/dry/%A_%a_0_log.out" in out
    assert not (tmp_path / "m.db").exists()  # the store was not even opened


def test_a_password_moves_from_the_uri_to_the_environment():
    env: dict[str, str] = {}
    assert move_password_to_env("postgresql://bob:s%40cret@db.example:5432/mlflow", env) == \
        "postgresql://bob@db.example:5432/mlflow"
    assert env == {"PGPASSWORD": "s@cret"}
    env = {}
    assert move_password_to_env("https://alice:pw@mlflow.example", env) == "https://mlflow.example"
    assert env == {"MLFLOW_TRACKING_PASSWORD": "pw", "MLFLOW_TRACKING_USERNAME": "alice"}
    assert move_password_to_env("postgresql://bob@db/mlflow", env) == "postgresql://bob@db/mlflow"


def test_redact_hides_query_string_passwords_too():
    assert redact("postgresql://h/db?user=u&password=SECRET and x") == "postgresql://h/db?user=u&password=*** and x"
    assert redact("postgresql://u:SECRET@h/db") == "postgresql://u:***@h/db"


def test_the_server_gets_its_password_by_environment_never_argv(tmp_path):
    (tmp_path / "pw").write_text("from-file\n")
    uri, env = server_env("postgresql://bob@db/mlflow", tmp_path / "pw", environ={})
    assert (uri, env) == ("postgresql://bob@db/mlflow", {"PGPASSWORD": "from-file"})
    uri, env = server_env("postgresql://bob:inline@db/mlflow", None, environ={})
    child = server_command(tmp_path, backend_store_uri=uri)
    assert env == {"PGPASSWORD": "inline"} and not any("inline" in part for part in child.argv)
    assert child.store == "postgresql://bob@db/mlflow"  # the URI the child reads has no password either
    with pytest.raises(ValueError, match="empty"):
        (tmp_path / "empty").write_text("")
        server_env("postgresql://bob@db/mlflow", tmp_path / "empty", environ={})


def test_wrong_credentials_name_the_fix():
    error = StoreError("postgresql://bob:SECRET@db/mlflow", "cannot be opened",
                       RuntimeError('(psycopg2.OperationalError) FATAL:  password authentication failed for user "bob"'))
    assert "SECRET" not in str(error) and "check the user and password" in str(error)
