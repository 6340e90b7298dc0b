package dev.tandem.tokenizer;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import jinjava.javax.el.CompositeELResolver;

import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A model's own chat template (Jinja, as in GGUF {@code tokenizer.chat_template} or
 * {@code tokenizer_config.json}), rendered with Jinjava the way Hugging Face renders it: {@code trim_blocks} and
 * {@code lstrip_blocks} on, {@code messages}, {@code add_generation_prompt}, {@code bos_token},
 * {@code eos_token}, {@code raise_exception} and {@code strftime_now}.
 *
 * <p>Jinjava is not Python: templates call Python string methods ({@code startswith}, {@code strip},
 * {@code split}, ...), which {@link PythonStringMethods} supplies; two constructs its parser lacks are rewritten
 * before parsing: the reversing slice {@code [::-1]} becomes {@code |reverse}, and keyword values of
 * {@code namespace(...)} are parenthesised (Jinjava would apply a filter in {@code n=xs|length - 1} to the
 * keyword pair rather than to {@code xs}); and the whitespace control of expressions, {@code {{-} and
 * {@code -}}}, which Jinjava parses but does not apply, is applied to the source. Immutable and thread-safe.
 */
public final class ChatTemplate {
    private static final Jinjava JINJAVA = createJinjava();
    private static final ThreadLocal<String> RAISED = new ThreadLocal<>();

    private final String source;
    private final String bosToken;
    private final String eosToken;

    public ChatTemplate(String source, String bosToken, String eosToken) {
        this.source = rewrite(source);
        this.bosToken = bosToken == null ? "" : bosToken;
        this.eosToken = eosToken == null ? "" : eosToken;
    }

    /** The template as given to Jinjava (after the rewrites above). */
    public String source() { return source; }

    /** The prompt for {@code messages}; with {@code addGenerationPrompt} it ends where the assistant's reply starts. */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        Map<String, Object> context = new HashMap<>();
        List<Map<String, Object>> list = new ArrayList<>();
        for (ChatMessage m : messages) {
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("role", m.role());
            entry.put("content", m.content());
            list.add(entry);
        }
        context.put("messages", list);
        context.put("add_generation_prompt", addGenerationPrompt);
        context.put("bos_token", bosToken);
        context.put("eos_token", eosToken);
        RAISED.remove();
        RenderResult result;
        try {
            result = JINJAVA.renderForResult(source, context);
        } catch (RuntimeException e) {
            throw new ChatTemplateException("the chat template failed: " + e.getMessage());
        }
        String raised = RAISED.get();
        RAISED.remove();
        if (raised != null) throw new ChatTemplateException("the chat template rejected the messages: " + raised);
        for (TemplateError error : result.getErrors()) {
            if (error.getSeverity() == TemplateError.ErrorType.FATAL) {
                throw new ChatTemplateException("the chat template failed at line " + error.getLineno() + ": " + error.getMessage());
            }
        }
        return result.getOutput();
    }

    /** {@code raise_exception(message)} as Hugging Face defines it: rendering stops with that message. */
    public static String raiseException(String message) {
        RAISED.set(message);
        throw new IllegalStateException(message);
    }

    /** {@code strftime_now(format)} (Llama 3.1+ templates put today's date in the system prompt). */
    public static String strftimeNow(String format) {
        ZonedDateTime now = ZonedDateTime.now();
        String pattern = format.replace("%d", "dd").replace("%b", "MMM").replace("%B", "MMMM").replace("%Y", "yyyy")
                .replace("%m", "MM").replace("%H", "HH").replace("%M", "mm").replace("%S", "ss");
        return now.format(DateTimeFormatter.ofPattern(pattern, Locale.ENGLISH));
    }

    private static Jinjava createJinjava() {
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new PythonStringMethods());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_WRITE);
        Jinjava jinjava = new Jinjava(JinjavaConfig.newBuilder()
                .withElResolver(resolver)
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .build());
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception", ChatTemplate.class, "raiseException", String.class));
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now", ChatTemplate.class, "strftimeNow", String.class));
        return jinjava;
    }

    private static final Pattern REVERSED = Pattern.compile("\\[\\s*:\\s*:\\s*-1\\s*]");
    private static final Pattern NAMESPACE = Pattern.compile("namespace\\(");

    /** The two rewrites described in the class comment. */
    static String rewrite(String template) {
        String s = trimAroundExpressions(template);
        s = REVERSED.matcher(s).replaceAll("|reverse");
        StringBuilder out = new StringBuilder();
        Matcher m = NAMESPACE.matcher(s);
        int done = 0;
        while (m.find(done)) {
            int open = m.end();
            out.append(s, done, open);
            int close = matchingParen(s, open, Math.min(s.length(), open + MAX_NAMESPACE_ARGUMENTS));
            if (close < 0) {
                done = open;
                continue;
            }
            out.append(parenthesiseKeywordValues(s.substring(open, close)));
            done = close;
        }
        out.append(s, done, s.length());
        return out.toString();
    }

    /**
     * {@code {{-} drops the whitespace before it and {@code -}}} the whitespace after it, in one pass. (A regex
     * {@code \\s*\\{\\{-} backtracks over every run of whitespace from each of its characters: 22 s for 100k spaces.)
     * Whitespace is the regex {@code \\s}: space, tab, newline, vertical tab, form feed, carriage return.
     */
    private static String trimAroundExpressions(String s) {
        StringBuilder out = new StringBuilder(s.length());
        int i = 0;
        while (i < s.length()) {
            if (s.startsWith("{{-", i)) {
                int end = out.length();
                while (end > 0 && isSpace(out.charAt(end - 1))) end--;
                out.setLength(end);
                out.append("{{");
                i += 3;
            } else if (s.startsWith("-}}", i)) {
                out.append("}}");
                i += 3;
                while (i < s.length() && isSpace(s.charAt(i))) i++;
            } else {
                out.append(s.charAt(i++));
            }
        }
        return out.toString();
    }

    private static boolean isSpace(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == 0x0B || c == '\f' || c == '\r';
    }

    /**
     * How far the arguments of one {@code namespace(...)} call are looked for: real templates pass a few short
     * keyword arguments, and an unclosed call in a hostile template must not make the rewrite quadratic.
     */
    private static final int MAX_NAMESPACE_ARGUMENTS = 4096;

    /**
     * Index of the ')' closing the '(' before {@code from}, skipping nested brackets and quoted strings; -1 if none
     * before {@code limit}.
     */
    private static int matchingParen(String s, int from, int limit) {
        int depth = 0;
        char quote = 0;
        for (int i = from; i < limit; i++) {
            char c = s.charAt(i);
            if (quote != 0) {
                if (c == '\\') i++;
                else if (c == quote) quote = 0;
            } else if (c == '\'' || c == '"') quote = c;
            else if (c == '(' || c == '[' || c == '{') depth++;
            else if (c == ')' || c == ']' || c == '}') {
                if (depth == 0) return c == ')' ? i : -1;
                depth--;
            }
        }
        return -1;
    }

    /** {@code a=x|f, b=y} becomes {@code a=(x|f), b=(y)}: split at top-level commas. */
    private static String parenthesiseKeywordValues(String args) {
        List<String> parts = new ArrayList<>();
        int depth = 0, start = 0;
        char quote = 0;
        for (int i = 0; i < args.length(); i++) {
            char c = args.charAt(i);
            if (quote != 0) {
                if (c == '\\') i++;
                else if (c == quote) quote = 0;
            } else if (c == '\'' || c == '"') quote = c;
            else if (c == '(' || c == '[' || c == '{') depth++;
            else if (c == ')' || c == ']' || c == '}') depth--;
            else if (c == ',' && depth == 0) {
                parts.add(args.substring(start, i));
                start = i + 1;
            }
        }
        parts.add(args.substring(start));
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < parts.size(); i++) {
            String p = parts.get(i);
            int eq = p.indexOf('=');
            if (i > 0) out.append(',');
            if (eq > 0 && p.substring(0, eq).trim().matches("[A-Za-z_][A-Za-z0-9_]*") && !p.startsWith("=", eq + 1)) {
                out.append(p, 0, eq + 1).append('(').append(p.substring(eq + 1).trim()).append(')');
            } else {
                out.append(p);
            }
        }
        return out.toString();
    }
}
