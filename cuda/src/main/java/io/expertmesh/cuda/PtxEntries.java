package io.expertmesh.cuda;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The kernel names a PTX text defines ({@code .visible .entry NAME(}), and their parameter types, so a launcher
 * whose declared parameters ({@link KernelSpecs}) do not fit the kernel (a missing argument, an int where a
 * pointer goes) is found when the modules load, naming the kernel and the parameter, instead of a kernel reading
 * garbage addresses.
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
}
