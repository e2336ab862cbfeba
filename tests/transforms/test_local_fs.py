"""The local file system set-up compiles (build/jvm/local-fs): the session's file: paths use
it, and it answers what Hadoop's own does - permissions, symlinks, renames that must not
replace a file - without starting a process."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from py4j.protocol import Py4JJavaError


def _hadoop(spark):
    jvm = spark.sparkContext._jvm
    return jvm, jvm.org.apache.hadoop.fs, spark.sparkContext._jsc.hadoopConfiguration()


def test_the_sessions_file_paths_use_the_local_file_system(spark) -> None:
    jvm, fs, conf = _hadoop(spark)
    uri = jvm.java.net.URI("file:///")
    assert fs.FileSystem.get(uri, conf).getRawFileSystem().getClass().getName() == (
        "dredge.hadoop.NioRawLocalFileSystem"
    )
    context = fs.FileContext.getFileContext(uri, conf)
    assert context.getDefaultFileSystem().getClass().getName() == "dredge.hadoop.LocalFs"


def test_new_files_and_folders_get_the_asked_permissions(spark, tmp_path: Path) -> None:
    jvm, fs, conf = _hadoop(spark)
    local = fs.FileSystem.getLocal(conf)
    perm = jvm.org.apache.hadoop.fs.permission.FsPermission
    folder = fs.Path(f"file://{tmp_path}/a/b")
    assert local.mkdirs(folder, perm(0o750))
    assert stat.S_IMODE(os.stat(tmp_path / "a" / "b").st_mode) == 0o750
    out = local.create(fs.Path(folder, "f"), perm(0o640), True, 4096, 1, 1 << 20, None)
    out.write(b"x")
    out.close()
    assert stat.S_IMODE(os.stat(tmp_path / "a" / "b" / "f").st_mode) == 0o640
    local.setPermission(fs.Path(folder, "f"), perm(0o604))
    assert stat.S_IMODE(os.stat(tmp_path / "a" / "b" / "f").st_mode) == 0o604
    assert local.getFileStatus(fs.Path(folder, "f")).getPermission().toShort() == 0o604
    local.setPermission(folder, perm(0o1777))  # the sticky bit: Hadoop's own way
    assert stat.S_IMODE(os.stat(tmp_path / "a" / "b").st_mode) == 0o1777


def test_a_symlink_is_told_from_a_file_and_a_rename_never_replaces(spark, tmp_path: Path) -> None:
    jvm, fs, conf = _hadoop(spark)
    context = fs.FileContext.getFileContext(jvm.java.net.URI("file:///"), conf)
    (tmp_path / "target").write_text("t")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    (tmp_path / "other").write_text("o")
    link = context.getFileLinkStatus(fs.Path(f"file://{tmp_path}/link"))
    assert link.isSymlink() and link.getSymlink().toUri().getPath() == str(tmp_path / "target")
    plain = context.getFileLinkStatus(fs.Path(f"file://{tmp_path}/other"))
    assert not plain.isSymlink() and plain.getLen() == 1
    rename = jvm.java.lang.Class.forName("org.apache.hadoop.fs.Options$Rename")
    rename_opts = jvm.java.lang.reflect.Array.newInstance(rename, 1)
    rename_opts[0] = rename.getEnumConstants()[0]  # NONE
    assert str(rename_opts[0]) == "NONE"
    # as Delta's log store and Spark's checkpoint files commit: never over an existing file
    with pytest.raises(Py4JJavaError, match="FileAlreadyExistsException"):
        context.rename(
            fs.Path(f"file://{tmp_path}/other"), fs.Path(f"file://{tmp_path}/target"), rename_opts
        )
    assert (tmp_path / "target").read_text() == "t"
    context.rename(
        fs.Path(f"file://{tmp_path}/other"), fs.Path(f"file://{tmp_path}/new"), rename_opts
    )
    assert (tmp_path / "new").read_text() == "o" and not (tmp_path / "other").exists()
    # a symlink is renamed as a link: the file it points at stays where it is
    context.rename(
        fs.Path(f"file://{tmp_path}/link"), fs.Path(f"file://{tmp_path}/moved"), rename_opts
    )
    assert (tmp_path / "moved").is_symlink() and (tmp_path / "target").read_text() == "t"


def test_a_dangling_link_is_a_link_and_a_missing_path_is_not_found(spark, tmp_path: Path) -> None:
    jvm, fs, conf = _hadoop(spark)
    context = fs.FileContext.getFileContext(jvm.java.net.URI("file:///"), conf)
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    status = context.getFileLinkStatus(fs.Path(f"file://{tmp_path}/dangling"))
    assert status.isSymlink() and status.getLen() == 0
    assert context.getLinkTarget(fs.Path(f"file://{tmp_path}/dangling")).toString() == str(
        tmp_path / "gone"
    )
    with pytest.raises(Py4JJavaError, match="FileNotFoundException"):
        context.getFileLinkStatus(fs.Path(f"file://{tmp_path}/missing"))
    with pytest.raises(Py4JJavaError, match="FileNotFoundException"):
        context.getLinkTarget(fs.Path(f"file://{tmp_path}/missing"))
    (tmp_path / "plain").write_text("p")
    with pytest.raises(Py4JJavaError, match="is not a symbolic link"):
        context.getLinkTarget(fs.Path(f"file://{tmp_path}/plain"))
