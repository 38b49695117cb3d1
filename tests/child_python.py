"""Run Python code in a fresh interpreter: what the tests of import-time behaviour, environment
variables and process exit need (a setting read once at import cannot be changed in this one)."""
import subprocess
import sys


def run(code, *args, env=None, cwd=None, check=False, timeout=120):
    """`python -c code *args` with its output captured as text.

    Args:
        code (str): The program.
        args: Its command-line arguments (sys.argv[1:]).
        env (dict, optional): Its whole environment (default: this process's).
        cwd (path, optional): Its working directory.
        check (bool): Raise CalledProcessError when it exits with a non-zero status.
        timeout (float): Seconds before it is killed and TimeoutExpired raised.

    Returns:
        subprocess.CompletedProcess: returncode, stdout and stderr (str).
    """
    return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=check)
