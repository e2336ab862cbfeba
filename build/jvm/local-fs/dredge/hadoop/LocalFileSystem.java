package dredge.hadoop;

/** The {@code file:} FileSystem (fs.file.impl): Hadoop's checksummed local file system over
 * {@link NioRawLocalFileSystem}. */
public class LocalFileSystem extends org.apache.hadoop.fs.LocalFileSystem {
  public LocalFileSystem() {
    super(new NioRawLocalFileSystem());
  }
}
