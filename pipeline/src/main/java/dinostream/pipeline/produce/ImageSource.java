package dinostream.pipeline.produce;

import java.io.IOException;

/**
 * A finite, indexed set of images (Fashion-MNIST, a folder, the synthetic generator). Indexed rather
 * than iterated so that {@link Order} can shuffle or sort by class without reading the images.
 */
public interface ImageSource {
    /** What goes into the records' {@code source} field. */
    String name();

    /** Number of images, indices 0 .. size-1. */
    int size();

    /** The class of image {@code i}, cheap (no image read); null when unknown. */
    Integer label(int i);

    /** Image {@code i}, or null when it has to be skipped (a file that is not JPEG or PNG after all). */
    SourceImage read(int i) throws IOException;
}
