package io.expertmesh.cuda;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The kernel names a PTX text defines ({@code .visible .entry NAME(}). */
public final class PtxEntries {
    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+([A-Za-z_][A-Za-z0-9_$]*)\\s*\\(");

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
}
