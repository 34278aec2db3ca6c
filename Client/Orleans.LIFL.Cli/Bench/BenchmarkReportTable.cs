using System.Globalization;
using Orleans.LIFL.Benchmarks.Harness;
using Spectre.Console;

namespace Orleans.LIFL.Cli.Bench;

/// <summary>A report as a table: figure, value, target, baseline, ratio (ours / baseline), pass or fail. Narrow
/// enough for 80 columns: the report's notes say what each figure measures.</summary>
internal static class BenchmarkReportTable
{
    public static Table Render(BenchmarkReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"[bold]{Markup.Escape(report.Benchmark)}[/]{(report.Quick ? " (quick)" : "")}")
            .AddColumn("figure")
            .AddColumn(new TableColumn("value").RightAligned())
            .AddColumn(new TableColumn("target").RightAligned())
            .AddColumn(new TableColumn("baseline").RightAligned())
            .AddColumn(new TableColumn("ratio").RightAligned())
            .AddColumn("result");

        foreach (var figure in report.Figures)
        {
            table.AddRow(
                Markup.Escape(figure.Title),
                Markup.Escape(Format(figure.Value, figure.Unit)),
                figure.Target is { } target ? Markup.Escape((target.Kind == TargetKind.AtLeast ? ">= " : "<= ") + Format(target.Bound, figure.Unit)) : "",
                figure.Baseline is { } baseline ? Markup.Escape(Format(baseline, figure.Unit)) : "",
                figure.Ratio is { } ratio ? Ratio(ratio, figure.LowerIsBetter) : "",
                figure.Passed switch
                {
                    true => "[green]pass[/]",
                    false => "[red]FAIL[/]",
                    null => "[grey]-[/]",
                });
        }

        return table;
    }

    private static string Format(double value, string unit) => unit == "/s"
        ? value.ToString("N0", CultureInfo.InvariantCulture) + "/s"
        : value.ToString(value < 10 ? "0.00" : "0.0", CultureInfo.InvariantCulture) + " " + unit;

    /// <summary>Green when ours is the better of the two.</summary>
    private static string Ratio(double ratio, bool lowerIsBetter)
    {
        var better = lowerIsBetter ? ratio < 1 : ratio > 1;
        var text = ratio.ToString("0.00", CultureInfo.InvariantCulture) + "x";
        return better ? $"[green]{text}[/]" : $"[yellow]{text}[/]";
    }
}
