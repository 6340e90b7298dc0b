package dev.tandem.cli;

import dev.tandem.model.ModelFile;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code tandem drafts}: which models under a folder can draft for a main model. Compatible models that are not
 * smaller are listed apart, as ones that cannot make decoding faster (see {@link DraftCandidates}): a user
 * looking for the model they expected sees why it is not offered, and no script that takes the first draft
 * picks one that only slows decoding down.
 */
@Command(name = "drafts", mixinStandardHelpOptions = true,
        description = "List GGUF files and Hugging Face folders under a folder that can serve as drafts for a model: "
                + "compatible smaller ones first, smallest first; then compatible ones that are not smaller; then the rest, with the reason.")
final class DraftsCommand implements Callable<Integer> {
    @Spec CommandSpec spec;
    @Mixin ModelOptions model;

    @Option(names = "--dir", required = true, paramLabel = "FOLDER", description = "Folder to scan (recursively).")
    Path dir;

    @Option(names = "--json", description = "Print {\"drafts\":[...],\"not_smaller\":[...],\"incompatible\":[...]}.")
    boolean json;

    @Override
    public Integer call() {
        if (!Files.isDirectory(dir)) throw new UsageException("--dir: " + dir + " is not a folder");
        PrintWriter out = spec.commandLine().getOut();
        DraftCandidates.Found found;
        try (ModelFile main = ModelFile.open(model.model())) {
            found = DraftCandidates.scan(main, dir);
        }
        if (json) {
            Map<String, Object> report = new LinkedHashMap<>();
            report.put("drafts", found.drafts().stream().map(DraftsCommand::json).toList());
            report.put("not_smaller", found.notSmaller().stream().map(DraftsCommand::json).toList());
            report.put("incompatible", found.incompatible().stream().map(DraftsCommand::json).toList());
            out.println(Json.write(report));
        } else if (found.isEmpty()) {
            out.println("no GGUF files or Hugging Face folders under " + dir);
        } else {
            if (found.drafts().isEmpty()) {
                out.println("no compatible model under " + dir + " is smaller than the main model");
            } else {
                out.println("drafts (compatible, smaller than the main model), smallest first:");
                found.drafts().forEach(c -> out.println(line(c)));
            }
            if (!found.notSmaller().isEmpty()) {
                out.println("compatible but not smaller than the main model, so they cannot make decoding faster:");
                found.notSmaller().forEach(c -> out.println(line(c)));
            }
            if (!found.incompatible().isEmpty()) {
                out.println("incompatible:");
                found.incompatible().forEach(c -> out.println("  " + c.path() + ": " + c.reason()));
            }
        }
        return 0;
    }

    private static String line(DraftCandidates.Compatible c) {
        return String.format("  %6.1f %% of the main model  %s", 100 * c.sizeRatio(), c.path());
    }

    private static Map<String, Object> json(DraftCandidates.Compatible c) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("path", c.path().toString());
        m.put("weight_bytes", c.weightBytes());
        m.put("size_ratio", c.sizeRatio());
        return m;
    }

    private static Map<String, Object> json(DraftCandidates.Incompatible c) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("path", c.path().toString());
        m.put("reason", c.reason());
        return m;
    }
}
