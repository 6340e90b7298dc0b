package dev.tandem.runtime.cpu;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

class WorkerPoolTest {

    @Test
    void runsEveryTaskExactlyOnce() {
        for (int threads : new int[] {1, 2, 4}) {
            try (WorkerPool pool = new WorkerPool(threads)) {
                assertEquals(threads, pool.threads());
                for (int round = 0; round < 200; round++) {
                    int tasks = round % 37;
                    AtomicIntegerArray seen = new AtomicIntegerArray(Math.max(1, tasks));
                    pool.forEach(tasks, seen::incrementAndGet);
                    for (int i = 0; i < tasks; i++) assertEquals(1, seen.get(i), "threads " + threads + " task " + i);
                }
            }
        }
    }

    @Test
    void aFailingTaskFailsTheCallAndThePoolStaysUsable() {
        try (WorkerPool pool = new WorkerPool(2)) {
            IllegalStateException boom = new IllegalStateException("boom");
            assertSame(boom, assertThrows(IllegalStateException.class, () -> pool.forEach(100, i -> {
                if (i == 50) throw boom;
            })));
            AtomicIntegerArray seen = new AtomicIntegerArray(10);
            pool.forEach(10, seen::incrementAndGet);
            for (int i = 0; i < 10; i++) assertEquals(1, seen.get(i));
        }
    }

    @Test
    void nestedCallsAreRefused() {
        try (WorkerPool pool = new WorkerPool(1)) {
            var e = assertThrows(IllegalStateException.class, () -> pool.forEach(2, i -> pool.forEach(2, j -> {})));
            assertEquals("WorkerPool.forEach called from inside a task or from two threads at once", e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> new WorkerPool(0));
    }
}
