package io.expertmesh.kvcache;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.zip.CRC32C;

/**
 * One full block of KV rows as the distributed tier stores it: the token ids it covers and, for every layer,
 * {@code blockSize} rows of {@code rowWidth} floats, all in one array.
 *
 * <p><b>Layout.</b> {@code data} is layer-major: layer {@code l}'s {@code blockSize·rowWidth} floats start at
 * {@code l·blockSize·rowWidth}, and inside a layer row {@code r} starts at {@code r·rowWidth} (the same rows
 * the router's {@code PagedKvStorage.block(id, l)} holds). See {@link #fromLayers} and {@link #copyLayerInto}.
 *
 * <p><b>Checksum.</b> CRC32C (hardware-accelerated on x86 and ARM, {@link CRC32C}) over, in order and all
 * little-endian: {@code key.hi}, {@code key.lo} (int64), {@code numLayers}, {@code rowWidth},
 * {@code blockSize} (int32), every token id (int32), every float's raw IEEE-754 bits (int32, so NaN payloads
 * count). The 32-bit value is held in the low half of {@link #checksum}. It catches corruption and entries
 * stored under the wrong key; it is no defence against a deliberate forger, who can recompute it.
 * Costs about 0.2 ms for a 2.2 MB DeepSeek-V3 block.
 *
 * <p><b>MAC.</b> Against forgers, a store with a {@link KvSecret} adds {@link #mac}: HMAC-SHA256 over the same
 * bytes as the checksum (see {@link BlockAuthenticator}); null on a block nobody signed. The MAC is a tag about
 * the contents, not part of them: {@link #equals} ignores it.
 *
 * <p><b>Ownership.</b> The arrays are not copied: a block handed to {@link KvBlockStore#publish} must not be
 * changed afterwards (publishing is asynchronous), and a block returned by a lookup belongs to the caller.
 * {@link #fromLayers} copies, so a router can build blocks straight from its paged storage.
 */
public record KvBlock(BlockKey key, int[] tokenIds, int numLayers, int rowWidth, int blockSize, float[] data,
                      long checksum, byte[] mac) {

    public KvBlock {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(tokenIds, "tokenIds");
        Objects.requireNonNull(data, "data");
        if (numLayers <= 0 || rowWidth <= 0 || blockSize <= 0) {
            throw new IllegalArgumentException("numLayers, rowWidth and blockSize must be positive, got "
                    + numLayers + ", " + rowWidth + ", " + blockSize);
        }
        if (tokenIds.length != blockSize) {
            throw new IllegalArgumentException("a block holds " + blockSize + " tokens, got " + tokenIds.length);
        }
        if ((long) numLayers * blockSize * rowWidth != data.length) {
            throw new IllegalArgumentException("data must hold numLayers·blockSize·rowWidth = "
                    + (long) numLayers * blockSize * rowWidth + " floats, got " + data.length);
        }
    }

    /** A block without a MAC. */
    public KvBlock(BlockKey key, int[] tokenIds, int numLayers, int rowWidth, int blockSize, float[] data,
                   long checksum) {
        this(key, tokenIds, numLayers, rowWidth, blockSize, data, checksum, null);
    }

    /** This block with {@code mac} as its MAC (the arrays are shared, not copied). */
    public KvBlock withMac(byte[] mac) {
        return new KvBlock(key, tokenIds, numLayers, rowWidth, blockSize, data, checksum, mac);
    }

    /** A block with its checksum computed; {@code data} is taken as is (layer-major, see the class comment). */
    public static KvBlock of(BlockKey key, int[] tokenIds, int numLayers, int rowWidth, int blockSize,
                             float[] data) {
        return new KvBlock(key, tokenIds, numLayers, rowWidth, blockSize, data,
                checksumOf(key, tokenIds, numLayers, rowWidth, blockSize, data));
    }

    /**
     * A block built from one array per layer, each {@code tokenIds.length·rowWidth} floats (what
     * {@code PagedKvStorage.block(id, layer)} returns). Copies both the token ids and the floats, so the
     * caller may reuse its arrays as soon as this returns.
     */
    public static KvBlock fromLayers(BlockKey key, int[] tokenIds, float[][] layers, int rowWidth) {
        int blockSize = tokenIds.length;
        int perLayer = blockSize * rowWidth;
        float[] data = new float[Math.multiplyExact(layers.length, perLayer)];
        for (int l = 0; l < layers.length; l++) {
            if (layers[l].length != perLayer) {
                throw new IllegalArgumentException("layer " + l + " must hold " + perLayer + " floats, got "
                        + layers[l].length);
            }
            System.arraycopy(layers[l], 0, data, l * perLayer, perLayer);
        }
        return of(key, tokenIds.clone(), layers.length, rowWidth, blockSize, data);
    }

    /** Copies layer {@code layer}'s {@code blockSize·rowWidth} floats into {@code dst} from index 0. */
    public void copyLayerInto(int layer, float[] dst) {
        Objects.checkIndex(layer, numLayers);
        int perLayer = blockSize * rowWidth;
        System.arraycopy(data, layer * perLayer, dst, 0, perLayer);
    }

    /** Whether the block was cut for a cache of this shape. */
    public boolean hasGeometry(int numLayers, int rowWidth, int blockSize) {
        return this.numLayers == numLayers && this.rowWidth == rowWidth && this.blockSize == blockSize;
    }

    /** Whether {@link #checksum} matches the contents (see the class comment for what it covers). */
    public boolean verify() {
        return checksum == checksumOf(key, tokenIds, numLayers, rowWidth, blockSize, data);
    }

    /** Bytes of payload: token ids and floats (what the stats count as bytes in and out). */
    public long payloadBytes() {
        return 4L * tokenIds.length + 4L * data.length;
    }

    /** The CRC32C described in the class comment. */
    public static long checksumOf(BlockKey key, int[] tokenIds, int numLayers, int rowWidth, int blockSize,
                                  float[] data) {
        CRC32C crc = new CRC32C();
        writeCovered(key, tokenIds, numLayers, rowWidth, blockSize, data, crc::update);
        return crc.getValue();
    }

    /** Hands {@code sink} the bytes the checksum and the MAC cover, in order (see the class comment). */
    void writeCovered(Consumer<ByteBuffer> sink) {
        writeCovered(key, tokenIds, numLayers, rowWidth, blockSize, data, sink);
    }

    private static void writeCovered(BlockKey key, int[] tokenIds, int numLayers, int rowWidth, int blockSize,
                                     float[] data, Consumer<ByteBuffer> sink) {
        ByteBuffer buf = ByteBuffer.allocate(64 * 1024).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(key.hi()).putLong(key.lo()).putInt(numLayers).putInt(rowWidth).putInt(blockSize);
        buf.flip();
        sink.accept(buf);
        int chunk = buf.capacity() / 4;
        for (int i = 0; i < tokenIds.length; i += chunk) {
            int n = Math.min(chunk, tokenIds.length - i);
            buf.clear();
            buf.asIntBuffer().put(tokenIds, i, n);
            buf.limit(4 * n);
            sink.accept(buf);
        }
        for (int i = 0; i < data.length; i += chunk) {
            int n = Math.min(chunk, data.length - i);
            buf.clear();
            buf.asFloatBuffer().put(data, i, n); // raw bits: FloatBuffer.put keeps NaN payloads on a heap buffer
            buf.limit(4 * n);
            sink.accept(buf);
        }
    }

    /** Contents compare by value (records compare arrays by identity); the MAC is not compared. */
    @Override
    public boolean equals(Object o) {
        return o instanceof KvBlock b && key.equals(b.key) && numLayers == b.numLayers && rowWidth == b.rowWidth
                && blockSize == b.blockSize && checksum == b.checksum && Arrays.equals(tokenIds, b.tokenIds)
                && Arrays.equals(data, b.data);
    }

    @Override
    public int hashCode() {
        return Objects.hash(key, numLayers, rowWidth, blockSize, checksum);
    }

    @Override
    public String toString() {
        return "KvBlock[key=" + key + ", layers=" + numLayers + ", rowWidth=" + rowWidth + ", blockSize="
                + blockSize + ", checksum=" + Long.toHexString(checksum) + (mac == null ? ", unsigned]" : ", signed]");
    }
}
