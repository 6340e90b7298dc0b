package dev.tandem.decode;

import dev.tandem.runtime.Batch;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.DeviceSampling.DraftDraw;
import dev.tandem.runtime.DeviceSampling.DrawnToken;
import dev.tandem.runtime.PagedKvCache;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A small model drafts: it takes its own choice (greedy: top token; sampling: a draw from the same sampler chain
 * as the main model) step by step. Its K/V storage lives on the main model's block tables, so the scheduler's
 * one {@code truncate} rolls both back; it keeps track of how far its own storage is valid and, before drafting,
 * runs the tokens it has not seen yet (the main model's last token, and accepted tokens) in one pass.
 * Draft logits beyond the shared vocabulary (see {@link VocabularyCheck}) are masked.
 */
public final class ModelDrafter implements Drafter {
    /** Row counts of draft passes the cost model keeps (one row per sequence, a few more for catch-up); beyond, extrapolated. */
    private static final int MAX_DRAFT_ROWS = 512;
    private final LoadedModel draft;
    /** K/V storage every session shares (an engine's one cache per model over its pool), or null: one per session. */
    private final KvCache shared;
    /** Forward passes of the draft model, all sessions together (an operator's view of batching at work). */
    private final AtomicLong passes = new AtomicLong();
    /** What its draft passes cost by row count (prefills are not drafting and ask fewer logits: not recorded). */
    private final PassCostModel passCosts = new PassCostModel(MAX_DRAFT_ROWS);
    private final AcceptanceHistory acceptance = new AcceptanceHistory();

    public ModelDrafter(LoadedModel draft) {
        this(draft, null);
    }

    /**
     * A drafter whose sessions all write into {@code shared}, the draft's storage over a pool of block tables
     * that several sequences use (sessions must be opened on {@code shared.tables()}); the caller closes it.
     */
    public ModelDrafter(LoadedModel draft, KvCache shared) {
        this.draft = draft;
        this.shared = shared;
    }

    public LoadedModel model() { return draft; }

    /** Forward passes the draft model has run for this drafter's sessions: prefills and drafts. */
    public long passes() { return passes.get(); }

    private ForwardResult forward(Batch batch, KvCache kv) {
        passes.incrementAndGet();
        return join(draft.forwardAsync(batch, kv));
    }

    /** {@link #forward} for a draft pass, its cost recorded by its row count. */
    private ForwardResult forwardDraft(Batch batch, KvCache kv) {
        long t0 = System.nanoTime();
        ForwardResult r = forward(batch, kv);
        passCosts.record(batch.size(), System.nanoTime() - t0);
        return r;
    }

    /** Confined to the thread that drafts, as the proposals are. */
    @Override
    public PassCostModel passCosts() { return passCosts; }

    @Override
    public AcceptanceHistory acceptance() { return acceptance; }

    /**
     * Sessions that write into the shared storage and draw on the host draft together: one pass per draft position
     * carries the rows of all of them, and a session whose draft ends (its length reached, or a token not confident
     * enough) drops out of the later passes. Each session's tokens are those its own {@link Session#propose} would
     * give, because a row's result does not depend on the other rows of its pass (the bitwise contract).
     */
    @Override
    public void proposeAll(List<Proposal> proposals) {
        List<Proposal> together = new ArrayList<>(proposals.size());
        for (Proposal p : proposals) {
            if (!(p.session() instanceof ModelSession m) || m.owner() != this) {
                throw new IllegalArgumentException("a proposal of another drafter's session");
            }
            if (proposals.size() > 1 && shared != null && m.kv == shared && p.out().keptRows() < 0 && p.max() > 0) together.add(p);
            else m.propose(p.context(), p.length(), p.max(), p.pMin(), p.out());
        }
        if (together.size() == 1) {
            Proposal p = together.getFirst();
            p.session().propose(p.context(), p.length(), p.max(), p.pMin(), p.out());
        } else if (together.size() > 1) {
            proposeTogether(together);
        }
    }

    private void proposeTogether(List<Proposal> proposals) {
        int n = proposals.size();
        ModelSession[] sessions = new ModelSession[n];
        int[] from = new int[n];
        int rows = 0;
        for (int j = 0; j < n; j++) {
            Proposal p = proposals.get(j);
            sessions[j] = (ModelSession) p.session();
            p.out().clear();
            // Positions written: the unseen context tokens up to length-1, then drafts 1..max-1 at length.. .
            sessions[j].tables.reserve(sessions[j].c.sequence(), p.length() + p.max() - 1);
            from[j] = Math.min(sessions[j].valid, p.length() - 1);
            rows += p.length() - from[j];
        }
        // The first pass: each session's unseen tokens (at least its last), logits of each one's last row.
        int[] tokens = new int[rows], positions = new int[rows], sequences = new int[rows], logitRows = new int[n];
        for (int j = 0, row = 0; j < n; j++) {
            Proposal p = proposals.get(j);
            for (int pos = from[j]; pos < p.length(); pos++, row++) {
                tokens[row] = p.context()[pos];
                positions[row] = pos;
                sequences[row] = sessions[j].c.sequence();
            }
            logitRows[j] = row - 1;
            sessions[j].valid = p.length();
        }
        ForwardResult r = forwardDraft(new Batch(tokens, positions, sequences, logitRows), shared);
        // live[0, count): the sessions whose drafts go on, in the order of r's rows.
        int[] live = new int[n];
        for (int j = 0; j < n; j++) live[j] = j;
        for (int i = 0, count = n; ; i++) {
            int going = 0;
            for (int a = 0; a < count; a++) {
                Proposal p = proposals.get(live[a]);
                if (sessions[live[a]].takeToken(r, a, p.context(), p.length(), i, p.max(), p.pMin(), p.out())) live[going++] = live[a];
            }
            count = going;
            if (count == 0) return;
            tokens = new int[count];
            positions = new int[count];
            sequences = new int[count];
            int[] all = new int[count];
            for (int a = 0; a < count; a++) {
                Proposal p = proposals.get(live[a]);
                tokens[a] = p.context()[p.length() + i];
                positions[a] = p.length() + i;
                sequences[a] = sessions[live[a]].c.sequence();
                all[a] = a;
            }
            r = forwardDraft(new Batch(tokens, positions, sequences, all), shared);
            for (int a = 0; a < count; a++) sessions[live[a]].valid = proposals.get(live[a]).length() + i + 1;
        }
    }

    @Override
    public int contextLength() { return draft.config().contextLength(); }

    @Override
    public Session open(Context context) {
        return new ModelSession(context);
    }

    private final class ModelSession implements Session {
        private final Context c;
        private final PagedKvCache tables;
        private final KvCache kv;
        private final BatchArrays batches;
        private final Sampler sampler;
        private final float[] logits;
        /** Ids below this are shared with the main model; the rest of the draft's logits are masked. */
        private final int shared, draftVocabulary;
        private final boolean greedy;
        /** Positions [0, valid) of the draft's storage hold the context's tokens. */
        private int valid;
        /**
         * Sampling without a repetition penalty over the whole vocabulary: draw on the draft's device when a draft
         * may keep its distributions there and its model samples on its device. The device's chain has no penalty and no
         * masking, and its draws are keyed by (seed, position) rather than taken from the context's random.
         */
        private final boolean deviceDraws;

        ModelSession(Context c) {
            this.c = c;
            this.tables = c.tables();
            KvCache common = ModelDrafter.this.shared;
            if (common != null && common.tables() != c.tables()) {
                throw new IllegalArgumentException("the draft's shared K/V storage lives on other block tables than the sequence");
            }
            this.kv = common != null ? common : draft.createKvCache(c.tables());
            this.batches = new BatchArrays(c.sequence(), c.draftMax() + 1);
            this.sampler = new Sampler(c.sampler(), c.vocabularySize());
            this.draftVocabulary = draft.config().vocabularySize();
            this.logits = new float[Math.max(draftVocabulary, c.vocabularySize())];
            this.shared = Math.min(draftVocabulary, c.vocabularySize());
            this.greedy = c.sampler().isGreedy();
            this.deviceDraws = c.sampler().samplesWithoutContext() && shared == draftVocabulary && shared == c.vocabularySize();
        }

        @Override
        public void prefill(int[] tokens, int length) {
            prefill(tokens, 0, length);
        }

        @Override
        public void prefill(int[] tokens, int cached, int length) {
            tables.reserve(c.sequence(), length);
            forward(batches.of(tokens, cached, length - cached, cached, false));
            valid = length;
        }

        @Override
        public int storedLength() { return valid; }

        ModelDrafter owner() { return ModelDrafter.this; }

        private ForwardResult forward(Batch batch) { return ModelDrafter.this.forward(batch, kv); }

        @Override
        public void propose(int[] context, int length, int max, float pMin, Draft out) {
            out.clear();
            if (max <= 0) return;
            // Positions written: the unseen context tokens up to length-1, then drafts 1..max-1 at length.. .
            tables.reserve(c.sequence(), length + max - 1);
            // At least context[length-1] runs, for its logits; a draft that ran ahead may hold more than that.
            int from = Math.min(valid, length - 1);
            Batch first = batches.of(context, from, length - from, from, false);
            if (deviceDraws && out.keptRows() >= 0 && draft.deviceSampling().isPresent()) {
                passes.incrementAndGet();
                long t0 = System.nanoTime();
                int ran = proposeOnDevice(draft.deviceSampling().get().sampleDraftAsync(first, kv, draw(out.keptRows())), context, length, max, pMin, out);
                passCosts.record(1, (System.nanoTime() - t0) / ran);   // one row each but a catch-up's first: close enough
                return;
            }
            ForwardResult r = forwardDraft(first, kv);
            valid = length;
            for (int i = 0; takeToken(r, 0, context, length, i, max, pMin, out); i++) {
                r = forwardDraft(batches.of(context, length + i, 1, length + i, false), kv);
                valid = length + i + 1;
            }
        }

        /**
         * Chooses draft token {@code i} (at position {@code length + i}) from result row {@code row}: greedy, the top
         * token; sampling, a draw from the same chain as the main model's. Returns whether the draft goes on, which
         * needs a pass over that token: false when the token was not confident enough (not proposed) or was the last.
         */
        boolean takeToken(ForwardResult r, int row, int[] context, int length, int i, int max, float pMin, Draft out) {
            Distribution q = out.next();
            int token;
            float top = 1f;
            if (greedy && shared == draftVocabulary) {
                token = r.argmax(row);           // no logits needed: on CUDA only the id and top probability cross
                if (pMin > 0) top = r.topProbability(row);
                q.setOneHot(token);
            } else if (greedy) {
                r.copyLogits(row, logits);       // masked: ids past the shared vocabulary do not count
                token = Sampler.argmax(logits, shared);
                if (pMin > 0) top = ForwardResult.topProbability(logits, 0, shared);
                q.setOneHot(token);
            } else {
                r.copyLogits(row, logits);
                sampler.fill(logits, shared, context, length + i, q);
                top = q.p(q.top());
                token = q.sample(c.random());
            }
            if (top < pMin) return false;        // not confident enough: this token is not proposed
            out.push(token);
            context[length + i] = token;         // scratch: the penalty window of the next draft step
            return i + 1 < max;                  // the last draft token need not be run
        }

        /**
         * {@link #propose} with the draws made where the draft's logits are: q_i stays in kept row
         * {@code out.keptRows() + i} and only the token and q_i's top probability come back. {@code drawn} is the
         * first draw, already enqueued. Returns the passes it ran.
         */
        private int proposeOnDevice(CompletionStage<DrawnToken> drawn, int[] context, int length, int max, float pMin, Draft out) {
            out.markOnDevice();
            for (int i = 0; ; i++) {
                DrawnToken d = drawn.toCompletableFuture().join();
                valid = length + i;
                if (d.topProbability() < pMin) return i + 1;  // not confident enough: this token is not proposed
                out.push(d.token());
                context[length + i] = d.token();
                if (i + 1 == max) return i + 1;
                passes.incrementAndGet();
                drawn = draft.deviceSampling().get().sampleDraftAsync(batches.of(context, length + i, 1, length + i, false), kv, draw(out.keptRows() + i + 1));
            }
        }

        private DraftDraw draw(int row) {
            SamplerSettings s = c.sampler();
            return new DraftDraw(row, s.temperature(), s.topK(), s.topP(), s.minP(), s.seed());
        }

        @Override
        public void rollback(int length) {
            valid = Math.min(valid, length);
        }

        @Override
        public void close() {
            if (kv != ModelDrafter.this.shared) kv.close();
        }
    }

    static ForwardResult join(CompletionStage<ForwardResult> stage) {
        return stage.toCompletableFuture().join();
    }
}
