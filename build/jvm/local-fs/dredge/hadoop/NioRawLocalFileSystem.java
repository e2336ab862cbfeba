package dredge.hadoop;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.Set;
import org.apache.hadoop.fs.FSLinkResolver;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;

/**
 * Hadoop's local file system, with the two calls it makes for every file it writes or renames
 * answered in the JVM. Without Hadoop's native library, RawLocalFileSystem starts a process for
 * each: {@code chmod} to set a new file's permissions, and {@code readlink} to tell a symlink from
 * a file before a rename (Delta's log commits, a stream's checkpoint files). The same answers
 * through java.nio; Hadoop's readlink is given the path as a file: URI, which it cannot read,
 * so it never found a link there - this one does.
 */
public class NioRawLocalFileSystem extends RawLocalFileSystem {
  private static final PosixFilePermission[] BITS = {
    PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE,
    PosixFilePermission.OTHERS_READ, PosixFilePermission.GROUP_EXECUTE,
    PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_READ,
    PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE,
    PosixFilePermission.OWNER_READ,
  };

  /** The rwx bits of {@code mode} as java.nio permissions. */
  static Set<PosixFilePermission> posix(short mode) {
    Set<PosixFilePermission> set = EnumSet.noneOf(PosixFilePermission.class);
    for (int i = 0; i < BITS.length; i++) {
      if ((mode & (1 << i)) != 0) {
        set.add(BITS[i]);
      }
    }
    return set;
  }

  @Override
  public void setPermission(Path p, FsPermission permission) throws IOException {
    short mode = permission.toShort();
    if ((mode & ~0777) != 0) { // the sticky bit: Hadoop's own way
      super.setPermission(p, permission);
      return;
    }
    try {
      Files.setPosixFilePermissions(pathToFile(p).toPath(), posix(mode));
    } catch (UnsupportedOperationException | FileSystemException e) {
      super.setPermission(p, permission); // no POSIX permissions here: Hadoop's own way
    }
  }

  @Override
  public FileStatus getFileLinkStatus(Path f) throws IOException {
    java.nio.file.Path file = pathToFile(f).toPath();
    if (!Files.isSymbolicLink(file)) {
      return getFileStatus(f);
    }
    Path target = new Path(Files.readSymbolicLink(file).toString());
    FileStatus link;
    try {
      FileStatus at = getFileStatus(f); // what the link points at
      link = new FileStatus(at.getLen(), false, at.getReplication(), at.getBlockSize(),
          at.getModificationTime(), at.getAccessTime(), at.getPermission(), at.getOwner(),
          at.getGroup(), target, f);
    } catch (FileNotFoundException e) { // a dangling link
      link = new FileStatus(0, false, 0, 0, 0, 0, FsPermission.getDefault(), "", "", target, f);
    }
    link.setSymlink(FSLinkResolver.qualifySymlinkTarget(getUri(), f, target));
    return link;
  }

  @Override
  public Path getLinkTarget(Path f) throws IOException {
    java.nio.file.Path file = pathToFile(f).toPath();
    if (!Files.exists(file, LinkOption.NOFOLLOW_LINKS)) {
      throw new FileNotFoundException("File " + f + " does not exist");
    }
    if (!Files.isSymbolicLink(file)) {
      throw new IOException("Path " + f + " is not a symbolic link");
    }
    return new Path(Files.readSymbolicLink(file).toString());
  }
}
