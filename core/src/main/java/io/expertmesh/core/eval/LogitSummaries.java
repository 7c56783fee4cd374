package io.expertmesh.core.eval;

import io.expertmesh.core.sample.TopN;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The file of {@code perplexity --kl-divergence-base}: for every scored token, the log-sum-exp of the logits, the
 * logit of the token that came next (so a comparison reports the base run's exact NLL), and the {@value #TOP_K}
 * largest logits with their ids. That is enough to compute the KL divergence of a later run
 * against this one to within the probability mass outside the top {@value #TOP_K} (lumped into one bucket), at a
 * few hundred bytes per token instead of the whole vocabulary's logits.
 *
 * <p>The header records the windows and a hash of the tokens, so a comparison against a different text, context or
 * tokenizer is refused instead of reporting nonsense.
 */
public final class LogitSummaries {
    static final int MAGIC = 0x454D4B4C; // "EMKL"
    static final int VERSION = 2;
    public static final int TOP_K = 32;

    private LogitSummaries() {
    }

    /** The identity of a run's scored tokens: windows and a hash of every token id. */
    public record Header(int context, int advance, int scored, int windows, long tokenHash) {
    }

    /** Writes summaries as a run produces them. */
    public static final class Writer implements AutoCloseable {
        private final DataOutputStream out;
        /** Reused for every token: the sampler's bounded heap, O(vocab) per token. */
        private final TopN top = new TopN(TOP_K);

        public Writer(Path file, Header header) throws IOException {
            out = new DataOutputStream(new BufferedOutputStream(Files.newOutputStream(file), 1 << 16));
            out.writeInt(MAGIC);
            out.writeInt(VERSION);
            out.writeInt(header.context());
            out.writeInt(header.advance());
            out.writeInt(header.scored());
            out.writeInt(header.windows());
            out.writeLong(header.tokenHash());
            out.writeInt(TOP_K);
        }

        /** One scored token: the log-sum-exp of {@code logits[off, off+vocab)}, the target's logit, the top logits. */
        public void add(float[] logits, int off, int vocab, double lse, int target) throws IOException {
            if (vocab < TOP_K) {
                throw new IllegalArgumentException("a vocabulary of " + vocab + " holds fewer than the " + TOP_K
                        + " top logits a base file keeps per token");
            }
            top.reset(TOP_K);
            top.offerAll(logits, off, vocab);
            top.sortDescending();
            out.writeDouble(lse);
            out.writeFloat(logits[off + target]);
            for (int k = 0; k < top.size(); k++) {
                out.writeInt(top.id(k));
                out.writeFloat(top.value(k));
            }
        }

        @Override
        public void close() throws IOException {
            out.close();
        }
    }

    /** Reads a base file back, token by token, in the order it was written. */
    public static final class Reader implements AutoCloseable {
        private final DataInputStream in;
        private final Header header;
        final int[] ids = new int[TOP_K];
        final float[] logits = new float[TOP_K];
        double lse;
        float targetLogit;

        public Reader(Path file) throws IOException {
            in = new DataInputStream(new BufferedInputStream(Files.newInputStream(file), 1 << 16));
            try {
                if (in.readInt() != MAGIC || in.readInt() != VERSION) {
                    throw new IOException(file + " is not a --kl-divergence-base file of this version");
                }
                header = new Header(in.readInt(), in.readInt(), in.readInt(), in.readInt(), in.readLong());
                if (in.readInt() != TOP_K) {
                    throw new IOException(file + " holds a different number of top logits per token");
                }
            } catch (EOFException e) {
                in.close();
                throw new IOException(file + " is truncated", e);
            } catch (IOException e) {
                in.close();
                throw e;
            }
        }

        public Header header() {
            return header;
        }

        /** Reads the next token's summary into this reader's fields. */
        void next() throws IOException {
            try {
                lse = in.readDouble();
                targetLogit = in.readFloat();
                for (int k = 0; k < TOP_K; k++) {
                    ids[k] = in.readInt();
                    logits[k] = in.readFloat();
                }
            } catch (EOFException e) {
                throw new IOException("the --kl-divergence-base file ends early", e);
            }
        }

        @Override
        public void close() throws IOException {
            in.close();
        }
    }
}
