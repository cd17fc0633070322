package dinostream.pipeline.snapshot;

/**
 * A complete snapshot found in (or just written to) a {@link SnapshotStore}: the folder's URI and
 * its manifest. Its files have the sizes the manifest lists; their checksums are verified by
 * {@link SnapshotStore#load}.
 */
public record SnapshotRef(String uri, Manifest manifest) {
    public long step() {
        return manifest.step();
    }

    public String modelVersion() {
        return manifest.modelVersion();
    }
}
