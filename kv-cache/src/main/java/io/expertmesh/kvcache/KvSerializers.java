package io.expertmesh.kvcache;

import com.hazelcast.nio.serialization.compact.CompactReader;
import com.hazelcast.nio.serialization.compact.CompactSerializer;
import com.hazelcast.nio.serialization.compact.CompactWriter;
import com.hazelcast.nio.serialization.FieldKind;

/**
 * Compact serializers of the tier's types. The type names ({@code expertmesh.kv.*}) and field names are the
 * wire schema: members, clients and cache nodes of different builds must agree on them, so they never follow
 * Java renames. Changing a field is a new schema; add fields, don't repurpose them.
 */
final class KvSerializers {
    static final String BLOCK_KEY_TYPE = "expertmesh.kv.BlockKey";
    static final String KV_BLOCK_TYPE = "expertmesh.kv.KvBlock";

    private KvSerializers() {
    }

    static final class BlockKeySerializer implements CompactSerializer<BlockKey> {
        @Override
        public BlockKey read(CompactReader in) {
            return new BlockKey(in.readInt64("hi"), in.readInt64("lo"));
        }

        @Override
        public void write(CompactWriter out, BlockKey key) {
            out.writeInt64("hi", key.hi());
            out.writeInt64("lo", key.lo());
        }

        @Override
        public String getTypeName() {
            return BLOCK_KEY_TYPE;
        }

        @Override
        public Class<BlockKey> getCompactClass() {
            return BlockKey.class;
        }
    }

    static final class KvBlockSerializer implements CompactSerializer<KvBlock> {
        @Override
        public KvBlock read(CompactReader in) {
            BlockKey key = new BlockKey(in.readInt64("keyHi"), in.readInt64("keyLo"));
            // "mac" came with block signing: entries written before it (or by an unsigned store) lack it.
            byte[] mac = in.getFieldKind("mac") == FieldKind.ARRAY_OF_INT8 ? in.readArrayOfInt8("mac") : null;
            return new KvBlock(key, in.readArrayOfInt32("tokenIds"), in.readInt32("numLayers"),
                    in.readInt32("rowWidth"), in.readInt32("blockSize"), in.readArrayOfFloat32("data"),
                    in.readInt64("checksum"), mac);
        }

        @Override
        public void write(CompactWriter out, KvBlock b) {
            // The key inline (two int64s) rather than a nested compact: one schema, fewer bytes per value.
            out.writeInt64("keyHi", b.key().hi());
            out.writeInt64("keyLo", b.key().lo());
            out.writeArrayOfInt32("tokenIds", b.tokenIds());
            out.writeInt32("numLayers", b.numLayers());
            out.writeInt32("rowWidth", b.rowWidth());
            out.writeInt32("blockSize", b.blockSize());
            out.writeArrayOfFloat32("data", b.data());
            out.writeInt64("checksum", b.checksum());
            out.writeArrayOfInt8("mac", b.mac()); // null for an unsigned block
        }

        @Override
        public String getTypeName() {
            return KV_BLOCK_TYPE;
        }

        @Override
        public Class<KvBlock> getCompactClass() {
            return KvBlock.class;
        }
    }
}
