package io.expertmesh.cuda;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The kernel names a PTX text defines ({@code .visible .entry NAME(}), and their parameter types, so a launch
 * whose arguments do not fit the kernel (a missing argument, an int where a pointer goes) is an error naming the
 * kernel and the argument instead of a kernel reading garbage addresses.
 */
public final class PtxEntries {
    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+([A-Za-z_][A-Za-z0-9_$]*)\\s*\\(");
    private static final Pattern SIGNATURE = Pattern.compile(
            "\\.entry\\s+([A-Za-z_][A-Za-z0-9_$]*)\\s*\\(([^)]*)\\)");
    private static final Pattern PARAM = Pattern.compile("\\.param\\s+\\.(\\w+)");

    private PtxEntries() {
    }

    public static List<String> of(String ptx) {
        List<String> names = new ArrayList<>();
        Matcher m = ENTRY.matcher(ptx);
        while (m.find()) {
            names.add(m.group(1));
        }
        return names;
    }

    /** Each entry's parameter types in order, as PTX names them ({@code u64}, {@code u32}, {@code f32}, ...). */
    public static Map<String, List<String>> signatures(String ptx) {
        Map<String, List<String>> sigs = new LinkedHashMap<>();
        Matcher m = SIGNATURE.matcher(ptx);
        while (m.find()) {
            List<String> types = new ArrayList<>();
            Matcher p = PARAM.matcher(m.group(2));
            while (p.find()) {
                types.add(p.group(1));
            }
            sigs.put(m.group(1), List.copyOf(types));
        }
        return sigs;
    }

    /**
     * Null when launch arguments fit the parameter types: an {@link Integer} a 32-bit integer, a {@link Float} an
     * f32, anything else (a device pointer) a 64-bit integer; otherwise what does not fit.
     */
    public static String mismatch(String kernel, List<String> params, Object[] args) {
        if (params.size() != args.length) {
            return kernel + " takes " + params.size() + " arguments, got " + args.length;
        }
        for (int i = 0; i < args.length; i++) {
            String t = params.get(i);
            boolean fits = switch (args[i]) {
                case Integer ignored -> t.equals("u32") || t.equals("s32") || t.equals("b32");
                case Float ignored -> t.equals("f32");
                default -> t.equals("u64") || t.equals("s64") || t.equals("b64");
            };
            if (!fits) {
                return kernel + " argument " + i + " is " + (args[i] == null ? "null" : args[i].getClass()
                        .getSimpleName()) + "; the kernel's parameter " + i + " is ." + t;
            }
        }
        return null;
    }
}
