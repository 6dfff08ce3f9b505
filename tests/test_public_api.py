"""``from read_trainer import ...``: the documented names resolve, and importing the package is cheap.

Each check runs in a fresh interpreter: in this process torch and transformers are
already imported by other tests, so ``sys.modules`` here would prove nothing.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Modules a bare ``import read_trainer`` must not load: the ML stack and every submodule
# that pulls it in (the trainer, the model, the collator, the evaluation suite, the demo).
HEAVY = ["torch", "transformers", "datasets", "accelerate", "peft", "PIL", "matplotlib", "huggingface_hub",
         "read_trainer.trainer", "read_trainer.modeling", "read_trainer.config", "read_trainer.data",
         "read_trainer.evaluation", "read_trainer.demo", "read_trainer.hub", "read_trainer.wise"]

# Creating any socket (or resolving a host name) raises. A subclass rather than a plain
# function, because ssl and others subclass ``socket.socket`` when they are imported.
NO_SOCKETS = """
import socket
class Refused(OSError):
    pass
class RefusingSocket(socket.socket):
    def __init__(self, *args, **kwargs):
        raise Refused("a socket was created")
def refuse(*args, **kwargs):
    raise Refused("a connection was attempted")
socket.socket = RefusingSocket
socket.create_connection = refuse
socket.getaddrinfo = refuse
"""


def run_python(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_is_cheap_and_opens_no_socket():
    out = run_python(NO_SOCKETS + f"""
import json, sys
import read_trainer
try:
    socket.socket()
    patched = False
except Refused:
    patched = True
print(json.dumps({{"patched": patched, "loaded": [m for m in {HEAVY!r} if m in sys.modules],
                  "file": read_trainer.__file__, "all": read_trainer.__all__, "dir": dir(read_trainer)}}))
""")
    assert out["patched"]  # the guard is live: a socket opened during the import would have raised
    assert Path(out["file"]).resolve() == REPO / "read_trainer" / "__init__.py"  # this checkout, not another
    assert out["loaded"] == []
    assert {"ReadTrainer", "ReadConfig", "ReadModel", "ReadCollator", "HardNegativeGenerator", "wise_ft",
            "evaluate_model", "run_suite", "load_suite", "ClipEmbedder", "CompositionalEvalCallback"} <= set(out["all"])
    assert set(out["all"]) <= set(out["dir"]) and "__version__" in out["dir"]


def test_every_public_name_resolves_to_its_defining_object_without_a_socket():
    out = run_python(NO_SOCKETS + """
import importlib, json
import read_trainer
from read_trainer import ReadTrainer, ReadConfig, ReadModel, ReadCollator
resolved = {}
for name in read_trainer.__all__:
    value = getattr(read_trainer, name)
    home = importlib.import_module(read_trainer._EXPORTS[name])
    resolved[name] = [getattr(value, "__name__", name), value is getattr(home, name)]
print(json.dumps({"resolved": resolved,
                  "trainer_is": ReadTrainer.__module__, "config_base": [c.__name__ for c in ReadConfig.__mro__]}))
""")
    assert all(same and shown == name for name, (shown, same) in out["resolved"].items()), out["resolved"]
    assert out["trainer_is"] == "read_trainer.trainer" and "TrainingArguments" in out["config_base"]


def test_unknown_names_and_submodules_behave_like_a_normal_package():
    out = run_python("""
import json
import read_trainer
try:
    read_trainer.NoSuchThing
    error = None
except AttributeError as e:
    error = str(e)
from read_trainer import losses  # a submodule, not an exported name: the import system finds it
from read_trainer.data.negatives import HardNegativeGenerator as direct
print(json.dumps({"error": error, "losses": losses.__name__, "same": direct is read_trainer.HardNegativeGenerator}))
""")
    assert out["error"] == "module 'read_trainer' has no attribute 'NoSuchThing'"
    assert out["losses"] == "read_trainer.losses" and out["same"]
