package dev.tandem.cli;

import dev.tandem.model.ModelFile;
import dev.tandem.tokenizer.Tokenizer;
import dev.tandem.tokenizer.Tokenizers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code tandem drafts}: which models under a folder can draft for a main model, smallest compatible first. */
@Command(name = "drafts", mixinStandardHelpOptions = true,
        description = "List GGUF files and Hugging Face folders under a folder that can serve as drafts for a model.")
final class DraftsCommand implements Callable<Integer> {
    @Spec CommandSpec spec;
    @Mixin ModelOptions model;

    @Option(names = "--dir", required = true, paramLabel = "FOLDER", description = "Folder to scan (recursively).")
    Path dir;

    @Option(names = "--json", description = "Print {\"candidates\":[...]}.")
    boolean json;

    @Override
    public Integer call() {
        if (!Files.isDirectory(dir)) throw new UsageException("--dir: " + dir + " is not a folder");
        PrintWriter out = spec.commandLine().getOut();
        List<DraftCandidates.Candidate> candidates;
        try (ModelFile main = ModelFile.open(model.model())) {
            Tokenizer tokenizer = Tokenizers.forModel(main);
            candidates = DraftCandidates.scan(tokenizer, main.path(), main.weightBytes(), dir);
        }
        if (json) {
            List<Map<String, Object>> list = new ArrayList<>();
            for (DraftCandidates.Candidate c : candidates) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("path", c.path().toString());
                m.put("compatible", c.compatible());
                m.put("bytes", c.bytes());
                m.put("size_ratio", c.sizeRatio());
                c.reason().ifPresent(r -> m.put("reason", r));
                list.add(m);
            }
            out.println(Json.write(Map.of("candidates", list)));
        } else if (candidates.isEmpty()) {
            out.println("no GGUF files or Hugging Face folders under " + dir);
        } else {
            for (DraftCandidates.Candidate c : candidates) {
                out.println(c.compatible()
                        ? String.format("compatible    %5.1f%% of the main model  %s", 100 * c.sizeRatio(), c.path())
                        : String.format("incompatible  %s: %s", c.path(), c.reason().orElse("")));
            }
        }
        return 0;
    }
}
