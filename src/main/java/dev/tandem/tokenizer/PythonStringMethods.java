package dev.tandem.tokenizer;

import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;

/**
 * The Python {@code str} methods chat templates call ({@code startswith}, {@code endswith}, {@code strip},
 * {@code lstrip}, {@code rstrip}, {@code split}, {@code upper}, {@code lower}, {@code title},
 * {@code capitalize}, {@code replace}), with Python's semantics (e.g. {@code split} takes a literal separator and
 * keeps empty parts; {@code strip(chars)} strips any of those characters). Jinjava would otherwise look for Java
 * methods of those names.
 */
final class PythonStringMethods extends ELResolver {
    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] types, Object[] args) {
        if (!(base instanceof String s) || method == null) return null;
        Object[] a = args == null ? new Object[0] : args;
        Object result = switch (method.toString()) {
            case "startswith" -> a.length == 1 ? s.startsWith(String.valueOf(a[0])) : null;
            case "endswith" -> a.length == 1 ? s.endsWith(String.valueOf(a[0])) : null;
            case "strip" -> rstrip(lstrip(s, chars(a)), chars(a));
            case "lstrip" -> lstrip(s, chars(a));
            case "rstrip" -> rstrip(s, chars(a));
            case "split" -> split(s, a);
            case "upper" -> a.length == 0 ? s.toUpperCase(Locale.ROOT) : null;
            case "lower" -> a.length == 0 ? s.toLowerCase(Locale.ROOT) : null;
            case "capitalize" -> a.length == 0 && !s.isEmpty() ? s.substring(0, 1).toUpperCase(Locale.ROOT) + s.substring(1).toLowerCase(Locale.ROOT) : null;
            case "title" -> a.length == 0 ? title(s) : null;
            case "replace" -> a.length == 2 ? s.replace(String.valueOf(a[0]), String.valueOf(a[1])) : null;
            default -> null;
        };
        if (result != null) context.setPropertyResolved(true);
        return result;
    }

    /** Characters to strip: the argument, or null for whitespace. */
    private static String chars(Object[] a) {
        return a.length == 0 || a[0] == null ? null : String.valueOf(a[0]);
    }

    private static boolean strippable(char c, String chars) {
        return chars == null ? Character.isWhitespace(c) : chars.indexOf(c) >= 0;
    }

    private static String lstrip(String s, String chars) {
        int i = 0;
        while (i < s.length() && strippable(s.charAt(i), chars)) i++;
        return s.substring(i);
    }

    private static String rstrip(String s, String chars) {
        int j = s.length();
        while (j > 0 && strippable(s.charAt(j - 1), chars)) j--;
        return s.substring(0, j);
    }

    private static List<String> split(String s, Object[] a) {
        List<String> parts = new ArrayList<>();
        if (a.length == 0 || a[0] == null) {       // whitespace runs, no empty parts
            for (String p : s.trim().split("\\s+")) if (!p.isEmpty()) parts.add(p);
            return parts;
        }
        String sep = String.valueOf(a[0]);
        if (sep.isEmpty()) throw new IllegalArgumentException("empty separator");
        int from = 0;
        for (int at; (at = s.indexOf(sep, from)) >= 0; from = at + sep.length()) parts.add(s.substring(from, at));
        parts.add(s.substring(from));
        return parts;
    }

    private static String title(String s) {
        StringBuilder out = new StringBuilder(s.length());
        boolean start = true;
        for (char c : s.toCharArray()) {
            out.append(start ? Character.toUpperCase(c) : Character.toLowerCase(c));
            start = !Character.isLetter(c);
        }
        return out.toString();
    }

    @Override public Object getValue(ELContext context, Object base, Object property) { return null; }

    @Override public Class<?> getType(ELContext context, Object base, Object property) { return null; }

    @Override public void setValue(ELContext context, Object base, Object property, Object value) {}

    @Override public boolean isReadOnly(ELContext context, Object base, Object property) { return true; }

    @Override public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) { return null; }

    @Override public Class<?> getCommonPropertyType(ELContext context, Object base) { return null; }
}
