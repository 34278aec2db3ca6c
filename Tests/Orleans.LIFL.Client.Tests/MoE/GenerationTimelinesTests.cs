using System.Diagnostics;
using Orleans.LIFL.Client.MoE;
using Xunit;

namespace Orleans.LIFL.Client.Tests.MoE;

/// <summary>The stall of a failure as the benchmark and the demo read it from the tokens' arrival times.</summary>
public sealed class GenerationTimelinesTests
{
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(1);

    /// <summary>A timestamp <paramref name="ms"/> milliseconds after the start.</summary>
    private static long At(double ms) => (long)(ms * Stopwatch.Frequency / 1000);

    private static GenerationTimelines Timelines(params double[][] arrivalsMs)
    {
        var timelines = new GenerationTimelines(arrivalsMs.Length);
        for (var session = 0; session < arrivalsMs.Length; session++)
        {
            for (var i = 0; i < arrivalsMs[session].Length; i++)
            {
                timelines.Add(session, new GeneratedToken(i, 'a', TimeSpan.Zero, 0, "silo"), At(arrivalsMs[session][i]));
            }
        }

        return timelines;
    }

    /// <summary>The gap across the failure is the stall when nothing after it waits longer, and it ends at the resumed first token.</summary>
    [Fact]
    public void The_gap_across_the_failure_is_the_stall_when_it_is_the_longest()
    {
        var timelines = Timelines([0, 5, 10, 40, 45], [2, 7, 12, 38, 43]);

        Assert.Equal(30, timelines.StallAfter(At(11), Window), 6);
        Assert.Equal(29, timelines.StallEndedAfter(At(11), Window), 6);
        Assert.Equal([[30, 5], [5, 26, 5]], timelines.GapsAround(At(11), Window));
    }

    /// <summary>A longer wait within the window after the failure is its stall, and the end says when it came.</summary>
    [Fact]
    public void A_longer_hiccup_after_the_resume_is_the_stall()
    {
        var timelines = Timelines([0, 5, 20, 25, 500, 505], [0, 5, 21, 26, 31, 36]);

        Assert.Equal(475, timelines.StallAfter(At(6), Window), 6);
        Assert.Equal(494, timelines.StallEndedAfter(At(6), Window), 6);
    }

    /// <summary>Gaps that start more than the window after the failure belong to the new steady state, not to it.</summary>
    [Fact]
    public void Gaps_starting_after_the_window_do_not_count()
    {
        var timelines = Timelines([0, 5, 20, 1050, 1055, 3000]);

        Assert.Equal(1030, timelines.StallAfter(At(6), Window), 6);
        Assert.Equal(15, timelines.StallAfter(At(6), TimeSpan.FromMilliseconds(10)), 6);
        Assert.Equal(14, timelines.StallEndedAfter(At(6), TimeSpan.FromMilliseconds(10)), 6);
    }

    /// <summary>No token after the failure: no stall can be read, and neither can its end.</summary>
    [Fact]
    public void Without_tokens_after_the_failure_there_is_no_stall()
    {
        var timelines = Timelines([0, 5, 10]);

        Assert.True(double.IsNaN(timelines.StallAfter(At(11), Window)));
        Assert.True(double.IsNaN(timelines.StallEndedAfter(At(11), Window)));
    }
}
