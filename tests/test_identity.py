"""The salted project id: real folders, real symlinks, real permissions, real processes."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from typer_telemetry import _identity
from typer_telemetry._identity import (
    PROJECT_MARKERS,
    is_project_id,
    is_salt,
    mint_salt,
    project_folder,
    project_id,
)

SALT = "0123456789abcdef" * 4
OTHER_USER = 65534
IDENTITY_SOURCE = Path(_identity.__file__).resolve()


def no_marker_above(folder: Path) -> bool:
    """Whether no ancestor of `folder` is a project (else the fallback cannot be seen)."""
    return not any(
        os.path.lexists(ancestor / marker)
        for ancestor in folder.resolve().parents
        for marker in PROJECT_MARKERS
    )


# --- the salt and the id's form ----------------------------------------------


def test_a_minted_salt_is_64_lower_hex_and_new_each_time() -> None:
    salts = {mint_salt() for _ in range(50)}
    assert len(salts) == 50
    for salt in salts:
        assert is_salt(salt)
        assert len(salt) == 64
        assert set(salt) <= set("0123456789abcdef")


@pytest.mark.parametrize(
    "value",
    [
        "",
        SALT.upper(),
        SALT[:-1],
        SALT + "0",
        "g" * 64,
        SALT.encode(),
        None,
        64,
        [SALT],
        " " + SALT[1:],
    ],
)
def test_anything_but_a_minted_salt_is_not_a_salt(value: object) -> None:
    assert not is_salt(value)


@pytest.mark.parametrize("salt", ["", "0" * 63, SALT.upper(), "password" * 8])
def test_a_missing_or_malformed_salt_is_refused_rather_than_hashing_the_bare_path(
    salt: str, tmp_path: Path
) -> None:
    """An empty or guessable salt would make the id a plain hash of the path."""
    with pytest.raises(ValueError):
        project_id(salt, tmp_path)


def test_the_id_is_32_lower_hex_and_recognised_as_one(tmp_path: Path) -> None:
    identifier = project_id(mint_salt(), tmp_path)
    assert is_project_id(identifier)
    assert len(identifier) == 32
    for wrong in (identifier.upper(), identifier[:-1], identifier + "0", "z" * 32, None, 32):
        assert not is_project_id(wrong)


def test_known_answers_pin_the_construction() -> None:
    """sha256(label NUL salt NUL fsencode(folder)), first 32 hex: docs/signals.md."""
    assert project_id(SALT, Path("/srv/projects/acme")) == "b3714868d7abaa63c936f800acf1d251"
    # A path that is not UTF-8 is hashed as its bytes on disk.
    assert (
        project_id(SALT, Path(os.fsdecode(b"/srv/caf\xe9"))) == "18fd340e8089d859929f05d7914ae70c"
    )


def test_the_fast_hash_and_hashlib_agree(tmp_path: Path) -> None:
    """Whichever SHA-256 module is loaded, the digest is the standard one."""
    message = b"typer-telemetry project id v1\x00" + SALT.encode() + b"\x00" + os.fsencode(tmp_path)
    assert project_id(SALT, tmp_path) == hashlib.sha256(message).hexdigest()[:32]


def test_the_same_folder_gives_a_different_id_on_each_install(tmp_path: Path) -> None:
    ids = {project_id(mint_salt(), tmp_path) for _ in range(20)}
    assert len(ids) == 20


def test_the_same_install_gives_the_same_id_and_other_folders_other_ids(tmp_path: Path) -> None:
    salt = mint_salt()
    assert project_id(salt, tmp_path) == project_id(salt, tmp_path)
    assert project_id(salt, tmp_path / "a") != project_id(salt, tmp_path / "b")


def test_a_dictionary_of_common_paths_does_not_reveal_the_folder() -> None:
    """Someone who holds ids but not the salt hashes every likely path: no match.

    The attacker's dictionary uses the library's own construction with every
    salt they can guess (none, all zeros, the path alone), and plain SHA-256
    of the path; the install's salt is 256 random bits they do not have.
    """
    users = ["alice", "bob", "root", "runner", "ubuntu", "dev"]
    names = ["x", "src", "app", "project", "tool", "acme", "api", "web"]
    paths = [
        f"{base}/{name}"
        for user in users
        for base in (f"/home/{user}", f"/home/{user}/src", f"/Users/{user}/code", "/srv", "/work")
        for name in names
    ]
    salt = mint_salt()
    secret = project_id(salt, Path("/home/alice/src/x"))
    guessed_salts = ["", "0" * 64, "f" * 64]
    dictionary = set()
    for path in paths:
        encoded = path.encode()
        dictionary.add(hashlib.sha256(encoded).hexdigest()[:32])
        for guess in guessed_salts:
            message = b"typer-telemetry project id v1\x00" + guess.encode() + b"\x00" + encoded
            dictionary.add(hashlib.sha256(message).hexdigest()[:32])
    assert "/home/alice/src/x" in paths
    assert secret not in dictionary
    # With the salt, the same dictionary does find it: the salt is the secret.
    assert secret in {project_id(salt, Path(path)) for path in paths}


# --- which folder is the project ---------------------------------------------


@pytest.mark.parametrize("marker", PROJECT_MARKERS)
def test_every_documented_marker_makes_its_folder_the_project(marker: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    deep = project / "src" / "pkg" / "sub"
    deep.mkdir(parents=True)
    (project / marker).mkdir()
    assert project_folder(deep) == project.resolve()
    assert project_folder(project) == project.resolve()


def test_a_git_file_as_in_a_worktree_or_submodule_marks_the_project(tmp_path: Path) -> None:
    project = tmp_path / "worktree"
    (project / "docs").mkdir(parents=True)
    (project / ".git").write_text("gitdir: /elsewhere/.git/worktrees/worktree\n")
    assert project_folder(project / "docs") == project.resolve()


def test_the_nearest_project_wins_in_nested_projects(tmp_path: Path) -> None:
    outer = tmp_path / "monorepo"
    inner = outer / "packages" / "inner"
    (inner / "src").mkdir(parents=True)
    (outer / "tools" / "bin").mkdir(parents=True)
    (outer / ".git").mkdir()
    (inner / "pyproject.toml").write_text("[project]\n")
    assert project_folder(inner / "src") == inner.resolve()
    assert project_folder(inner) == inner.resolve()
    assert project_folder(outer / "tools" / "bin") == outer.resolve()
    assert project_folder(outer / "packages") == outer.resolve()


def test_without_a_marker_the_start_folder_itself_is_the_project(tmp_path: Path) -> None:
    if not no_marker_above(tmp_path):
        pytest.skip("a folder above the test's temporary folder is itself a project")
    start = tmp_path / "loose" / "folder"
    start.mkdir(parents=True)
    assert project_folder(start) == start.resolve()
    assert project_folder(start).is_absolute()


def test_the_same_project_however_it_is_reached(tmp_path: Path) -> None:
    """Through a symlink, through `..`, from a subfolder, relative: one folder, one id."""
    project = tmp_path / "real" / "project"
    (project / "src" / "pkg").mkdir(parents=True)
    (project / "package.json").write_text("{}")
    (tmp_path / "link").symlink_to(project, target_is_directory=True)
    (tmp_path / "deep-link").symlink_to(project / "src" / "pkg", target_is_directory=True)
    salt = mint_salt()
    ways = [
        project,
        project / "src" / "pkg",
        tmp_path / "link",
        tmp_path / "link" / "src",
        tmp_path / "deep-link",
        project / "src" / ".." / "src" / "pkg",
        tmp_path / "real" / "." / "project" / "src",
    ]
    folders = {project_folder(way) for way in ways}
    assert folders == {project.resolve()}
    assert len({project_id(salt, project_folder(way)) for way in ways}) == 1


def test_a_relative_start_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    (project / "setup.cfg").write_text("")
    monkeypatch.chdir(project / "sub")
    assert project_folder(Path(".")) == project.resolve()
    assert project_folder(Path("..") / "sub") == project.resolve()


def test_a_big_folder_is_searched_name_by_name_not_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listing a folder of thousands of entries would cost milliseconds on every run.

    The marker is a broken symlink: by name or by listing, a marker is a name
    that is there, whatever it points to.
    """
    project = tmp_path / "big"
    (project / "sub").mkdir(parents=True)
    for number in range(700):
        (project / f"a-file-with-a-rather-long-name-{number:05}.txt").touch()
    assert os.stat(project).st_size > _identity._LIST_AT_MOST
    (project / "Cargo.toml").symlink_to(tmp_path / "missing")
    listed: list[str] = []
    real_listdir = os.listdir

    def listdir(path: str) -> list[str]:
        listed.append(path)
        return real_listdir(path)

    monkeypatch.setattr(_identity.os, "listdir", listdir)
    assert project_folder(project / "sub") == project.resolve()
    assert listed == [str((project / "sub").resolve())]


def test_symlink_loops_never_raise_and_a_looping_marker_still_counts(tmp_path: Path) -> None:
    base = tmp_path / "loops"
    base.mkdir()
    (base / "a").symlink_to(base / "b")
    (base / "b").symlink_to(base / "a")
    (base / "self").symlink_to(base / "self")
    if not no_marker_above(base):
        pytest.skip("a folder above the test's temporary folder is itself a project")
    for start in (base / "a", base / "self", base / "a" / "deeper" / "still"):
        folder = project_folder(start)
        assert folder.is_absolute()
        assert str(folder).startswith(str(base.resolve()))
    (base / ".git").symlink_to(base / ".git")  # a loop, but the name is there
    assert project_folder(base / "a") == base.resolve()


@pytest.mark.parametrize(
    "start",
    [Path("/nonexistent/surely/not/here"), Path("relative/that/does/not/exist"), Path("a\x00b")],
)
def test_a_start_that_does_not_exist_or_cannot_be_a_path_never_raises(start: Path) -> None:
    folder = project_folder(start)
    assert isinstance(folder, Path)


def test_a_start_that_is_not_a_path_at_all_never_raises() -> None:
    assert project_folder(None) == Path(os.sep)  # type: ignore[arg-type]


# --- a deleted working folder, unreadable folders: real processes ------------

CHILD = """
import importlib.util, os, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("identity", sys.argv[1])
identity = importlib.util.module_from_spec(spec)
spec.loader.exec_module(identity)
{body}
"""


def run_child(
    body: str, *args: str, cwd: Path, env: dict[str, str], user: int | None = None
) -> str:
    """Run `body` in a fresh interpreter with `_identity` loaded from its file."""
    python = sys.executable if user is None else other_users_python()
    result = subprocess.run(
        [python, "-c", CHILD.format(body=body), str(IDENTITY_SOURCE), *args],
        cwd=cwd,
        env=env,
        user=user,
        group=user,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def other_users_python() -> str:
    """An interpreter the other user may run (ours may live in root's home)."""
    for candidate in (sys.executable, shutil.which("python3") or "", "/usr/bin/python3"):
        if not candidate:
            continue
        try:
            probe = subprocess.run(
                [candidate, "-c", "import sys; assert sys.version_info >= (3, 10)"],
                user=OTHER_USER,
                group=OTHER_USER,
                capture_output=True,
                timeout=60,
            )
        except OSError:  # not executable by that user
            continue
        if probe.returncode == 0:
            return candidate
    pytest.skip("no Python 3.10+ that the other user may run")


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder outside root's private tmp, which the other user can reach."""
    folder = Path(tempfile.mkdtemp(prefix="identity-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    for path in folder.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder, ignore_errors=True)


def test_a_deleted_working_folder_falls_back_to_pwd_and_finds_the_project(tmp_path: Path) -> None:
    """The cwd was removed under the process: `os.getcwd()` fails, the id does not."""
    project = tmp_path / "project"
    (project / "build").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\n")
    body = (
        "os.rmdir(os.getcwd())\n"
        "try:\n"
        "    os.getcwd()\n"
        "except FileNotFoundError:\n"
        "    print('cwd gone')\n"
        "print(identity.project_folder(Path('.')))\n"
    )
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PWD": str(project / "build")}
    output = run_child(body, cwd=project / "build", env=environment)
    assert output.splitlines() == ["cwd gone", str(project.resolve())]


def test_a_deleted_working_folder_without_pwd_falls_back_to_the_root(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    body = "os.rmdir(os.getcwd())\nprint(identity.project_folder(Path('.')))\n"
    output = run_child(body, cwd=gone, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert Path(output).is_absolute()
    assert output == os.sep or any((Path(output) / marker).exists() for marker in PROJECT_MARKERS)


def test_a_folder_that_can_be_searched_but_not_listed_still_shows_its_marker(shared: Path) -> None:
    """chmod 711: the other user cannot list it, but can look a name up in it."""
    project = shared / "project"
    (project / "src").mkdir(parents=True)
    (project / ".hg").mkdir()
    os.chown(project / "src", OTHER_USER, OTHER_USER)
    project.chmod(0o711)
    output = run_child(
        "print(identity.project_folder(Path(sys.argv[2])))",
        str(project / "src"),
        cwd=shared,
        env={"PATH": "/usr/bin:/bin"},
        user=OTHER_USER,
    )
    assert output == str(project.resolve())


def test_an_unreadable_folder_on_the_way_up_is_passed_over(shared: Path) -> None:
    """chmod 000 between the start and the project: no error, the project above is found."""
    project = shared / "project"
    start = project / "locked" / "inner" / "sub"
    start.mkdir(parents=True)
    (project / "go.mod").write_text("module x\n")
    (project / "locked" / "inner" / "package.json").write_text("{}")  # unreachable
    (project / "locked").chmod(0o000)
    output = run_child(
        "print(identity.project_folder(Path(sys.argv[2])))",
        str(start),
        cwd=shared,
        env={"PATH": "/usr/bin:/bin"},
        user=OTHER_USER,
    )
    assert output == str(project.resolve())


def test_an_unreadable_folder_with_no_project_above_gives_the_start(shared: Path) -> None:
    if not no_marker_above(shared):
        pytest.skip("a folder above /tmp is itself a project")
    start = shared / "locked" / "inner"
    start.mkdir(parents=True)
    (shared / "locked").chmod(0o000)
    output = run_child(
        "print(identity.project_folder(Path(sys.argv[2])))",
        str(start),
        cwd=shared,
        env={"PATH": "/usr/bin:/bin"},
        user=OTHER_USER,
    )
    assert output == str(start)


def test_loading_the_module_loads_no_hash_module_and_an_id_loads_the_fast_one() -> None:
    """`import hashlib` loads OpenSSL (milliseconds); the built-in SHA-256 module is used instead."""
    body = (
        "names = ('hashlib', '_hashlib', '_sha2', '_sha256')\n"
        "print(' '.join(sorted(m for m in names if m in sys.modules)) or '-')\n"
        "identity.project_id(identity.mint_salt(), Path('/x'))\n"
        "print(' '.join(sorted(m for m in names if m in sys.modules)) or '-')\n"
    )
    output = run_child(body, cwd=Path("/"), env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    before, after = output.splitlines()
    assert before == "-"
    fast = [name for name in ("_sha2", "_sha256") if importlib.util.find_spec(name) is not None]
    if not fast:
        pytest.skip("this interpreter has no built-in SHA-256 module; hashlib is the fallback")
    assert fast[0] in after.split()
    assert "_hashlib" not in after.split()
