using System.Text.Json;
using System.Text.Json.Nodes;

namespace Orleans.LIFL.Benchmarks.Harness;

/// <summary>
/// The JSON form of a report: one object with each figure under its key, the baseline's figures under "baseline",
/// a "ratio_NAME_to_baseline" per figure that has a baseline, the "targets", "quick" and the "machine".
/// </summary>
public static class BenchmarkReportJson
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
    private static readonly JsonSerializerOptions SnakeCase = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static JsonObject ToJson(BenchmarkReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var json = new JsonObject
        {
            ["benchmark"] = report.Benchmark,
            ["quick"] = report.Quick,
            ["passed"] = report.Passed,
        };

        var baseline = new JsonObject();
        var targets = new JsonObject();
        foreach (var figure in report.Figures)
        {
            json[figure.Key] = Round(figure.Value);
            if (figure.Baseline is { } baselineValue)
            {
                baseline[figure.Key] = Round(baselineValue);
            }

            if (figure.Ratio is { } ratio)
            {
                json[$"ratio_{figure.ShortName}_to_baseline"] = Round(ratio);
            }

            if (figure.Target is { } target)
            {
                targets[figure.Key] = new JsonObject
                {
                    [target.Kind == TargetKind.AtLeast ? "min" : "max"] = target.Bound,
                    ["pass"] = figure.Passed,
                };
            }
        }

        json["baseline"] = baseline;
        json["targets"] = targets;

        // A benchmark's own members win over the generic ones of the same name (e.g. a "baseline" object of its own).
        foreach (var (key, value) in report.Extras)
        {
            json[key] = JsonSerializer.SerializeToNode(value, value.GetType(), SnakeCase);
        }

        json["details"] = Details(report.Details);
        json["notes"] = new JsonArray([.. report.Notes.Select(n => (JsonNode?)n)]);
        json["duration_seconds"] = Round(report.Duration.TotalSeconds);
        json["machine"] = MachineDescription.ToJson();
        return json;
    }

    public static string ToJsonText(BenchmarkReport report) => ToJson(report).ToJsonString(Indented);

    private static JsonObject Details(IReadOnlyDictionary<string, object> details)
    {
        var json = new JsonObject();
        foreach (var (key, value) in details)
        {
            json[key] = JsonSerializer.SerializeToNode(value, value.GetType(), SnakeCase);
        }

        return json;
    }

    /// <summary>Three decimals are far below the noise of any figure here and keep the file readable.</summary>
    private static double Round(double value) => Math.Round(value, 3);
}
