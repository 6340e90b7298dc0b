package dev.tandem.cli;

import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineStats;
import dev.tandem.engine.Tandem;
import dev.tandem.server.OpenAiServer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/**
 * {@code tandem serve}: the OpenAI-compatible HTTP server. Runs until SIGTERM or Ctrl-C, then drains: new requests
 * get 503 and {@code /health} says "draining" at once, the generations in flight finish (up to
 * {@code --drain-timeout}, then they end with finish reason "shutdown"), and the process exits 0.
 */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve a model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models).")
public final class ServeCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Mixin ModelOptions model;

    @Option(names = "--draft", paramLabel = "PATH", description = "Draft model (GGUF file or Hugging Face folder); repeatable.")
    List<Path> drafts = new ArrayList<>();

    @Option(names = "--host", description = "Interface to bind (default: ${DEFAULT-VALUE}; 0.0.0.0 for every interface).")
    String host = "127.0.0.1";

    @Option(names = "--port", description = "TCP port (default: ${DEFAULT-VALUE}; 0 picks a free one).")
    int port = 8080;

    @Option(names = "--backend", description = "auto, cpu, cuda or cuda-host (default: ${DEFAULT-VALUE}).")
    String backend = "auto";

    @Option(names = "--ctx", paramLabel = "N", description = "Context length per sequence (default: the model's).")
    int contextLength;

    @Option(names = "--kv-memory", paramLabel = "SIZE", description = "K/V cache budget, e.g. 512M or 2G (default: --parallel full contexts).")
    String kvMemory;

    @Option(names = "--parallel", paramLabel = "N", description = "Sequences decoded together (default: ${DEFAULT-VALUE}).")
    int parallel = 4;

    @Option(names = "--queue", paramLabel = "N", description = "Requests that may wait for a slot before new ones get 503 (default: ${DEFAULT-VALUE}).")
    int queue = 64;

    @Option(names = "--drain-timeout", paramLabel = "TIME", description = "On SIGTERM or Ctrl-C, how long requests in flight may "
            + "still run before they end with finish reason 'shutdown', e.g. 30s, 500ms, 2m (default: ${DEFAULT-VALUE}).")
    String drainTimeout = "30s";

    @Option(names = "--threads", paramLabel = "N", description = "CPU threads (default: all cores).")
    int threads = Runtime.getRuntime().availableProcessors();

    @Option(names = "--no-prefix-cache", description = "Prefill every prompt in full instead of sharing the K/V of "
            + "prompt prefixes the cache already holds (outputs are the same either way).")
    boolean noPrefixCache;

    @Option(names = "--api-key", paramLabel = "KEY", description = "Require 'Authorization: Bearer KEY' on /v1 requests "
            + "(visible in the process list: prefer --api-key-file or the " + API_KEY_VARIABLE + " environment variable).")
    String apiKey;

    @Option(names = "--api-key-file", paramLabel = "FILE", description = "Read the API key from the first line of FILE.")
    Path apiKeyFile;

    /** The environment variable that gives the API key when neither flag does. */
    static final String API_KEY_VARIABLE = "TANDEM_API_KEY";

    @Override
    public Integer call() throws InterruptedException {
        if (port < 0 || port > 65535) throw new UsageException("--port must be in 0..65535, got " + port);
        if (parallel < 1) throw new UsageException("--parallel must be at least 1, got " + parallel);
        if (queue < 0) throw new UsageException("--queue must be at least 0, got " + queue);
        RuntimeOptions.checkThreads(threads);
        if (contextLength < 0) throw new UsageException("--ctx must be positive, got " + contextLength);
        String key = apiKey(apiKey, apiKeyFile, System.getenv());
        Duration drain = drainTimeout();
        Tandem.Builder builder = Tandem.builder().model(model.model()).backend(backend).contextLength(contextLength)
                .threads(threads).parallel(parallel).maxQueue(queue).drainTimeout(drain);
        if (kvMemory != null) builder.kvMemory(parseSize(kvMemory));
        builder.prefixCache(!noPrefixCache);
        for (Path d : drafts) builder.draft(ModelOptions.requireFileOrFolder(d));
        Engine engine = builder.build();
        OpenAiServer server = new OpenAiServer(engine, OpenAiServer.Options.defaults().withHost(host).withPort(port).withApiKey(key));
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        try {
            server.startBeforeWarmUp();
        } catch (RuntimeException e) {
            engine.close();
            throw new UserInputException("cannot listen on " + host + ":" + port + ": " + rootMessage(e));
        }
        // Before the warm-up: a SIGTERM while it runs drains it like any request.
        Thread hook = new Thread(() -> shutDown(engine, server, drain, err), "tandem-serve-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            server.warmUp();
        } catch (RuntimeException e) {
            if (engine.isDraining()) new CountDownLatch(1).await();     // a SIGTERM came during the warm-up: the hook ends the process
            Runtime.getRuntime().removeShutdownHook(hook);      // it would close both a second time and exit 0
            server.close();
            engine.close();
            throw e;
        }
        announce(engine, server.url(), out, err);
        new CountDownLatch(1).await();      // the shutdown hook ends the process
        return 0;
    }

    /**
     * The shutdown hook (SIGTERM, Ctrl-C): drain the engine (new requests get 503 from this moment), let the
     * streams write their last events, free everything, then end the process with status 0. A JVM that a signal
     * shuts down would otherwise exit 128 + the signal's number, which an orchestrator reads as a crash;
     * {@link Runtime#halt} is the one way to set the status from a shutdown hook, and nothing is left to run.
     */
    private static void shutDown(Engine engine, OpenAiServer server, Duration drain, PrintWriter err) {
        EngineStats load = engine.stats();
        if (load.active() + load.waiting() > 0) {
            err.println("tandem serve: draining " + (load.active() + load.waiting()) + " requests (up to " + drain.toMillis() / 1000.0 + " s)");
            err.flush();
        }
        engine.drain(drain);
        server.close();
        engine.close();
        err.println("tandem serve: stopped");
        err.flush();
        System.out.flush();
        Runtime.getRuntime().halt(0);
    }

    /** How long {@code --drain-timeout} lets requests in flight run on SIGTERM (the deployment manifests are checked against it). */
    public Duration drainTimeout() {
        return parseDuration("--drain-timeout", drainTimeout);
    }

    /** "30s", "500ms", "2m", or plain seconds ("30", "0.5"); zero or more. */
    static Duration parseDuration(String option, String text) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("([0-9]+(?:\\.[0-9]+)?)(ms|s|m)?").matcher(text.trim());
        if (!m.matches()) throw new UsageException(option + ": '" + text + "' is not a duration like 30s, 500ms or 2m");
        double v = Double.parseDouble(m.group(1));
        double millis = v * switch (m.group(2) == null ? "s" : m.group(2)) {
            case "ms" -> 1;
            case "m" -> 60_000;
            default -> 1_000;
        };
        if (millis > Duration.ofDays(1).toMillis()) throw new UsageException(option + ": '" + text + "' is longer than a day");
        return Duration.ofMillis(Math.round(millis));
    }

    /**
     * The API key: {@code --api-key}, else the first line of {@code --api-key-file}, else {@value #API_KEY_VARIABLE};
     * null when none is given. Both flags at once, or an empty key, are errors rather than a server without a key.
     */
    static String apiKey(String flag, Path file, Map<String, String> environment) {
        if (flag != null && file != null) throw new UsageException("--api-key and --api-key-file exclude each other");
        if (flag != null) {
            if (flag.isBlank()) throw new UsageException("--api-key must not be empty");
            return flag;
        }
        if (file != null) {
            if (!Files.isRegularFile(file)) throw new UserInputException("--api-key-file: " + file + " is not a regular file");
            String first;
            try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
                first = in.readLine();
            } catch (IOException e) {
                throw new UserInputException("--api-key-file: cannot read " + file + ": " + e.getMessage());
            }
            if (first == null || first.isBlank()) throw new UserInputException("--api-key-file: " + file + " has no key on its first line");
            return first.strip();
        }
        String variable = environment.get(API_KEY_VARIABLE);
        if (variable != null && variable.isBlank()) throw new UsageException(API_KEY_VARIABLE + " is set but empty");
        return variable;
    }

    /**
     * The startup lines: on stdout the backend chosen and where the models are served; on stderr, when {@code auto}
     * fell back to the CPU, why (one line each).
     */
    static void announce(Engine engine, String url, PrintWriter out, PrintWriter err) {
        Engine.BackendInfo backend = engine.backend();
        if (backend.fallbackReason() != null) {
            err.println("tandem serve: " + backend.fallbackReason());
            err.flush();
        }
        List<String> drafts = engine.models().stream().skip(1).map(m -> m.id()).toList();
        out.println("tandem serve: backend " + backend.name() + " (" + backend.description() + ")");
        out.println("tandem serve: " + engine.mainModel().id() + (drafts.isEmpty() ? "" : " (drafts: " + String.join(", ", drafts) + ")")
                + " at " + url + "/v1  (Ctrl-C to stop)");
        out.flush();
    }

    private static String rootMessage(Throwable e) {
        while (e.getCause() != null) e = e.getCause();
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    /** "1048576", "512K", "512M", "2G" (powers of 1024), case-insensitive, optional trailing "B"/"iB". */
    static long parseSize(String text) {
        String s = text.trim().toUpperCase(Locale.ROOT).replaceAll("I?B$", "");
        long unit = 1;
        if (!s.isEmpty()) {
            switch (s.charAt(s.length() - 1)) {
                case 'K' -> unit = 1L << 10;
                case 'M' -> unit = 1L << 20;
                case 'G' -> unit = 1L << 30;
                case 'T' -> unit = 1L << 40;
                default -> { }
            }
            if (unit > 1) s = s.substring(0, s.length() - 1);
        }
        try {
            double v = Double.parseDouble(s);
            if (!(v > 0)) throw new NumberFormatException();
            return (long) (v * unit);
        } catch (NumberFormatException e) {
            throw new UsageException("--kv-memory: '" + text + "' is not a size like 512M or 2G");
        }
    }
}
