package dev.tandem.bench;

import dev.tandem.engine.Engine;
import dev.tandem.engine.GenerationOutput;
import dev.tandem.engine.GenerationRequest;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * Time to first token of a conversation's second turn, with the prefix cache and without: each conversation's first
 * turn (a prompt of a given length, then generated tokens) runs on an engine, then its second turn (the first turn's
 * prompt and reply, then a short new message). With the cache the second turn prefills only the new message;
 * without, the whole conversation. The same second-turn prompts then run on an engine without the cache.
 */
public final class ChatTurnBench {
    /** A conversation's second turn on both engines: prompt size, tokens the cache served, time to first token. */
    public record Row(int firstPromptTokens, int secondPromptTokens, int cachedTokens, double cachedSeconds, double uncachedSeconds,
                      boolean sameOutput) {}

    private final Consumer<String> progress;

    public ChatTurnBench(Consumer<String> progress) { this.progress = progress; }

    /**
     * One conversation per prompt: conversation i starts with prompt i and is filled to {@code historyTokens} prompt
     * tokens with all the prompts, repeated; its first turn generates {@code replyTokens}; its second turn adds the
     * next prompt as the new message and generates {@code replyTokens}, to compare the outputs. {@code engines}
     * opens the engine with the prefix cache (true) or without (false); one is open at a time, so a large model fits.
     */
    public List<Row> run(Function<Boolean, Engine> engines, List<String> prompts, int historyTokens, int replyTokens) {
        int n = prompts.size();
        int[][] firsts = new int[n][], seconds = new int[n][];
        GenerationOutput[] on = new GenerationOutput[n];
        try (Engine cached = engines.apply(true)) {
            int[] filler = cached.tokenizer().encode(" " + String.join(" ", prompts), false, true);
            for (int i = 0; i < n; i++) {
                firsts[i] = fill(cached.tokenizer().encode(prompts.get(i), true, true), filler, historyTokens);
                int[] reply = cached.generateBlocking(request(firsts[i], replyTokens)).tokenIds();
                int[] next = cached.tokenizer().encode(" " + prompts.get((i + 1) % n), false, true);
                seconds[i] = Arrays.copyOf(firsts[i], firsts[i].length + reply.length + next.length);
                System.arraycopy(reply, 0, seconds[i], firsts[i].length, reply.length);
                System.arraycopy(next, 0, seconds[i], firsts[i].length + reply.length, next.length);
                on[i] = cached.generateBlocking(request(seconds[i], replyTokens));
                progress.accept(String.format(Locale.ROOT, "conversation %d: second turn of %d tokens, %d cached: %.3f s to the first token",
                        i + 1, seconds[i].length, on[i].stats().cachedPromptTokens(), on[i].stats().timeToFirstToken()));
            }
        }
        List<Row> rows = new ArrayList<>();
        try (Engine uncached = engines.apply(false)) {
            for (int i = 0; i < n; i++) {
                GenerationOutput off = uncached.generateBlocking(request(seconds[i], replyTokens));
                progress.accept(String.format(Locale.ROOT, "conversation %d without the cache: %.3f s to the first token", i + 1, off.stats().timeToFirstToken()));
                rows.add(new Row(firsts[i].length, seconds[i].length, on[i].stats().cachedPromptTokens(), on[i].stats().timeToFirstToken(),
                        off.stats().timeToFirstToken(), Arrays.equals(on[i].tokenIds(), off.tokenIds())));
            }
        }
        return rows;
    }

    private static GenerationRequest request(int[] prompt, int maxTokens) {
        return GenerationRequest.builder().promptTokens(prompt).maxTokens(maxTokens).ignoreEndOfGeneration(true).build();
    }

    /** {@code opening} followed by {@code filler} (repeated) up to {@code length} tokens. */
    static int[] fill(int[] opening, int[] filler, int length) {
        int[] out = Arrays.copyOf(opening, Math.max(length, opening.length));
        for (int i = opening.length, j = 0; i < out.length; i++, j = (j + 1) % filler.length) out[i] = filler[j];
        return out;
    }

    /** The rows as a Markdown table, with the median times. */
    public static String table(List<Row> rows) {
        StringBuilder sb = new StringBuilder();
        sb.append("| conversation | turn-1 prompt | turn-2 prompt | cached tokens | TTFT turn 2, cache (s) | TTFT turn 2, no cache (s) | speed-up | same output |\n");
        sb.append("|---:|---:|---:|---:|---:|---:|---:|:---:|\n");
        for (int i = 0; i < rows.size(); i++) {
            Row r = rows.get(i);
            sb.append(String.format(Locale.ROOT, "| %d | %d | %d | %d | %.3f | %.3f | %.1fx | %s |%n", i + 1, r.firstPromptTokens(),
                    r.secondPromptTokens(), r.cachedTokens(), r.cachedSeconds(), r.uncachedSeconds(), r.uncachedSeconds() / r.cachedSeconds(),
                    r.sameOutput() ? "yes" : "NO"));
        }
        double on = Median.of(rows.stream().mapToDouble(Row::cachedSeconds).toArray());
        double off = Median.of(rows.stream().mapToDouble(Row::uncachedSeconds).toArray());
        sb.append(String.format(Locale.ROOT, "%nmedian time to first token of the second turn: %.3f s with the prefix cache, %.3f s without (%.1fx)%n",
                on, off, off / on));
        return sb.toString();
    }
}
