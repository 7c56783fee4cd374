package io.expertmesh.bench.load;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A server's reported output count against the chunks that carried the tokens. */
class ChunkTokensTest {

    static List<long[]> chunks(long... nanosAndTokens) {
        List<long[]> c = new ArrayList<>();
        for (int i = 0; i < nanosAndTokens.length; i += 2) {
            c.add(new long[] {nanosAndTokens[i], nanosAndTokens[i + 1]});
        }
        return c;
    }

    static long[] flat(List<long[]> chunks) {
        return chunks.stream().flatMapToLong(java.util.Arrays::stream).toArray();
    }

    @Test
    void notReported_orEqual_leavesTheChunks() {
        List<long[]> c = chunks(10, 1, 20, 1);
        ChunkTokens.fit(c, -1, 30);
        assertArrayEquals(new long[] {10, 1, 20, 1}, flat(c));
        ChunkTokens.fit(c, 2, 30);
        assertArrayEquals(new long[] {10, 1, 20, 1}, flat(c));
    }

    @Test
    void moreReported_goesToTheLastChunk() {
        List<long[]> c = chunks(10, 1, 20, 1);
        ChunkTokens.fit(c, 5, 30);
        assertArrayEquals(new long[] {10, 1, 20, 4}, flat(c));
        RequestRecord r = new RequestRecord(0, new long[] {10, 20}, new int[] {1, 4}, 30, 1, 0, null);
        assertEquals(5, r.outputTokens());
        assertEquals(4, r.itlNanos().length);
    }

    @Test
    void fewerReported_cutsFromTheEnd() {
        List<long[]> c = chunks(10, 1, 20, 1, 30, 2);
        ChunkTokens.fit(c, 2, 40);
        assertArrayEquals(new long[] {10, 1, 20, 1}, flat(c));
    }

    @Test
    void reportedWithoutAnyChunk_arriveAtTheEnd() {
        List<long[]> c = chunks();
        ChunkTokens.fit(c, 3, 40);
        assertArrayEquals(new long[] {40, 3}, flat(c));
        List<long[]> none = chunks();
        ChunkTokens.fit(none, 0, 40);
        assertEquals(0, none.size());
    }
}
