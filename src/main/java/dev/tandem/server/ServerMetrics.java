package dev.tandem.server;

import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineStats;
import dev.tandem.engine.GenerationOutput;
import dev.tandem.engine.GenerationStats;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.Set;

/**
 * The server's Prometheus metrics, in a registry of its own (several servers in one JVM do not clash).
 * Request and token counts are recorded as requests end; the engine's load (queue, batch, K/V blocks) is read
 * from {@link Engine#stats()} at scrape time, so it is never stale. Every name starts with {@code tandem_}.
 */
final class ServerMetrics {
    /** Endpoints named in the {@code endpoint} label; any other path counts as "other" (labels stay few). */
    private static final Set<String> ENDPOINTS = Set.of("/v1/models", "/v1/chat/completions", "/v1/completions", "/health", "/health/live", "/metrics");

    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final PrometheusTextFormatWriter writer = PrometheusTextFormatWriter.create();

    private final Counter requests = Counter.builder().name("tandem_requests")
            .help("HTTP requests answered, by endpoint and status code").labelNames("endpoint", "status").register(registry);
    private final Counter generations = Counter.builder().name("tandem_generations")
            .help("Generations ended, by finish reason (stop, length, cancelled, deadline)").labelNames("finish_reason").register(registry);
    private final Counter promptTokens = Counter.builder().name("tandem_prompt_tokens")
            .help("Prompt tokens of ended generations").register(registry);
    private final Counter generatedTokens = Counter.builder().name("tandem_generated_tokens")
            .help("Tokens generated (completion tokens) by ended generations").register(registry);
    private final Counter draftTokens = Counter.builder().name("tandem_draft_tokens")
            .help("Tokens proposed by draft models or prompt lookup").register(registry);
    private final Counter acceptedDraftTokens = Counter.builder().name("tandem_draft_accepted_tokens")
            .help("Draft tokens the main model accepted").register(registry);
    private final Counter rejectedDraftTokens = Counter.builder().name("tandem_draft_rejected_tokens")
            .help("Draft tokens the main model rejected").register(registry);
    private final Histogram decodeSpeed = Histogram.builder().name("tandem_decode_tokens_per_second")
            .help("Decode speed of each ended generation: tokens per second after the first one")
            .classicOnly().classicUpperBounds(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000).register(registry);
    private final Gauge lastDecodeSpeed = Gauge.builder().name("tandem_last_decode_tokens_per_second")
            .help("Decode speed of the last generation with at least two tokens").register(registry);
    private final Histogram timeToFirstToken = Histogram.builder().name("tandem_time_to_first_token_seconds")
            .help("Seconds from submission to the first generated token (queueing and prefill included)")
            .classicOnly().classicUpperBounds(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30).register(registry);

    ServerMetrics(Engine engine) {
        GaugeWithCallback.builder().name("tandem_draft_acceptance_ratio")
                .help("Accepted / verified draft tokens over all generations so far (absent until a draft was verified)")
                .callback(cb -> {
                    double verified = acceptedDraftTokens.get() + rejectedDraftTokens.get();
                    if (verified > 0) cb.call(acceptedDraftTokens.get() / verified);
                }).register(registry);
        gauge("tandem_queue_depth", "Requests waiting for a batch slot", engine, EngineStats::waiting);
        gauge("tandem_active_sequences", "Sequences in the running batch", engine, EngineStats::active);
        gauge("tandem_kv_blocks_in_use", "K/V cache blocks held by sequences (a block shared by several counts once)", engine, EngineStats::kvBlocksInUse);
        gauge("tandem_kv_blocks_total", "K/V cache blocks in the pool", engine, EngineStats::kvBlocksTotal);
        gauge("tandem_kv_blocks_cached", "K/V cache blocks of cached prompt prefixes that no sequence holds (evicted when the pool needs room)",
                engine, EngineStats::kvBlocksCached);
        CounterWithCallback.builder().name("tandem_forward_passes")
                .help("Forward passes each loaded model has run (a pass carries the rows of every sequence in the batch)")
                .labelNames("model")
                .callback(cb -> engine.forwardPasses().forEach((model, passes) -> cb.call(passes, model))).register(registry);
        CounterWithCallback.builder().name("tandem_prefix_cache_hit_tokens")
                .help("Prompt tokens whose K/V came from the prefix cache instead of a prefill")
                .callback(cb -> cb.call(engine.stats().prefixCacheHitTokens())).register(registry);
    }

    private void gauge(String name, String help, Engine engine, java.util.function.ToIntFunction<EngineStats> read) {
        GaugeWithCallback.builder().name(name).help(help).callback(cb -> cb.call(read.applyAsInt(engine.stats()))).register(registry);
    }

    /** One answered HTTP request. */
    void request(String path, int status) {
        requests.labelValues(ENDPOINTS.contains(path) ? path : "other", Integer.toString(status)).inc();
    }

    /** One ended generation (also cancelled or past its deadline: its tokens were computed all the same). */
    void finished(GenerationOutput out) {
        GenerationStats s = out.stats();
        generations.labelValues(out.finishReason().apiName()).inc();
        promptTokens.inc(s.promptTokens());
        generatedTokens.inc(s.completionTokens());
        draftTokens.inc(s.draftTokens());
        acceptedDraftTokens.inc(s.acceptedDraftTokens());
        rejectedDraftTokens.inc(s.rejectedDraftTokens());
        if (s.completionTokens() > 0) timeToFirstToken.observe(s.timeToFirstToken());
        if (s.completionTokens() > 1) {
            decodeSpeed.observe(s.tokensPerSecond());
            lastDecodeSpeed.set(s.tokensPerSecond());
        }
    }

    String contentType() { return writer.getContentType(); }

    /** The Prometheus text exposition of every metric, read now. */
    byte[] scrape() throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream(8192);
        writer.write(out, registry.scrape());
        return out.toByteArray();
    }
}
