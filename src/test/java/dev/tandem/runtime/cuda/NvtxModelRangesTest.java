package dev.tandem.runtime.cuda;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The ranges a speculative step leaves on an Nsight timeline, per phase and model: the main model's prompt is
 * "prefill", the draft model's passes "draft", verification "verify" with "accept" inside, and truncating the shared
 * tables after a rejection "rollback" for each model's cache. Recorded through an {@link Nvtx} whose push and pop
 * write to a list instead of calling NVTX.
 */
class NvtxModelRangesTest {
    static final String MAIN = "kjv-main-q8_0", DRAFT = "kjv-draft-q8_0";

    static int push(List<String> events, MemorySegment label) {
        events.add("push " + label.getString(0));
        return 0;
    }

    static int pop(List<String> events) {
        events.add("pop");
        return 0;
    }

    static Nvtx recording(List<String> events) throws ReflectiveOperationException {
        MethodHandles.Lookup lookup = MethodHandles.lookup();
        MethodHandle push = lookup.findStatic(NvtxModelRangesTest.class, "push", MethodType.methodType(int.class, List.class, MemorySegment.class));
        MethodHandle pop = lookup.findStatic(NvtxModelRangesTest.class, "pop", MethodType.methodType(int.class, List.class));
        return new Nvtx(push.bindTo(events), pop.bindTo(events), null, "a list");
    }

    @Test
    void aSpeculativeStepIsNamedPerPhaseAndModel() throws ReflectiveOperationException {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        List<String> events = Collections.synchronizedList(new ArrayList<>());
        Nvtx previous = Nvtx.swapGlobal(recording(events));
        try (CudaBackend cuda = CudaBackend.onHost();
             ModelFile mainFile = ModelFile.open(SharedData.kjv(MAIN + ".gguf"));
             ModelFile draftFile = ModelFile.open(SharedData.kjv(DRAFT + ".gguf"));
             CudaModel main = (CudaModel) cuda.load(mainFile, LoadOptions.defaults());
             CudaModel draft = (CudaModel) cuda.load(draftFile, LoadOptions.defaults().asDraft())) {
            PagedKvCache tables = new PagedKvCache(16, 8);
            try (KvCache mainKv = main.createKvCache(tables); KvCache draftKv = draft.createKvCache(tables)) {
                int seq = tables.createSequence();
                int[] prompt = {1, 400, 401, 402};
                tables.reserve(seq, prompt.length + 3);
                main.forward(Batch.of(seq, 0, prompt, false), mainKv);
                int last = draft.forward(Batch.of(seq, 0, prompt, false), draftKv).argmax(0);
                int d1 = draft.forward(Batch.of(seq, prompt.length, new int[] {last}, false), draftKv).argmax(0);
                int wrong = (d1 + 1) % main.config().vocabularySize();
                assertEquals(expected("prefill " + MAIN, "draft " + DRAFT, "draft " + DRAFT), events);
                events.clear();

                main.verifyGreedy(Batch.of(seq, prompt.length, new int[] {last, d1, wrong}, true), mainKv);
                assertEquals(List.of("push verify " + MAIN, "push accept " + MAIN, "pop", "pop"), events);
                events.clear();

                tables.truncate(seq, prompt.length + 1);  // both draft tokens rejected
                assertEquals(List.of("push rollback " + MAIN, "push rollback " + DRAFT, "pop", "pop"), events);
                events.clear();
                tables.release(seq);
                assertEquals(List.of(), events, "ending a sequence is not a rollback");
            }
            int later = tables.createSequence();
            tables.reserve(later, 20);
            tables.truncate(later, 3);
            assertEquals(List.of(), events, "closed caches stop observing the tables");
        } finally {
            Nvtx.swapGlobal(previous);
        }
    }

    /** Each label pushed and popped in turn. */
    static List<String> expected(String... labels) {
        List<String> out = new ArrayList<>();
        for (String l : labels) {
            out.add("push " + l);
            out.add("pop");
        }
        return out;
    }
}
