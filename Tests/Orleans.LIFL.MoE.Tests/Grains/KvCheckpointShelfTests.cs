using Microsoft.Extensions.Time.Testing;
using Orleans.LIFL.Grains.MoE;
using Xunit;

namespace Orleans.LIFL.MoE.Tests.Grains;

/// <summary>The requests one checkpoint store holds: begun, kept, replaced, and dropped when left alone too long.</summary>
public sealed class KvCheckpointShelfTests
{
    private const int Width = 4;

    /// <summary>
    /// A request no session touched for <see cref="KvCheckpointShelf.StaleAfter"/> is dropped at the next begin; one
    /// that was appended to or restored meanwhile stays, with its prefix.
    /// </summary>
    [Fact]
    public void Requests_left_alone_too_long_are_dropped()
    {
        var time = new FakeTimeProvider();
        using var shelf = new KvCheckpointShelf(time);
        shelf.Begin(Request("left"), Width);
        shelf.Begin(Request("appended"), Width);
        shelf.Begin(Request("restored"), Width);

        time.Advance(KvCheckpointShelf.StaleAfter - TimeSpan.FromMinutes(1));
        Assert.Equal(1, shelf.Touch("appended")!.Append([Segment(0), Segment(1)]));
        Assert.NotNull(shelf.Touch("restored")?.Checkpoint());

        time.Advance(TimeSpan.FromMinutes(2));
        shelf.Begin(Request("new"), Width);
        Assert.Null(shelf.Find("left"));
        Assert.Equal(1, shelf.Find("appended")!.CommittedThrough);
        Assert.NotNull(shelf.Find("restored"));
        Assert.Equal(3, shelf.Count);

        // Later on the others go stale too, unless touched.
        time.Advance(KvCheckpointShelf.StaleAfter);
        Assert.Equal(["appended", "new", "restored"], shelf.DropStale(time.GetTimestamp()).Order());
        Assert.Equal(0, shelf.Count);
    }

    /// <summary>Beginning the same generation again keeps its prefix (a resumed session); another generation under the id replaces it.</summary>
    [Fact]
    public void A_new_generation_replaces_the_old_one_and_the_same_one_is_kept()
    {
        using var shelf = new KvCheckpointShelf(new FakeTimeProvider());
        shelf.Begin(Request("r"), Width);
        shelf.Touch("r")!.Append([Segment(0), Segment(1), Segment(2)]);

        shelf.Begin(Request("r"), Width);
        Assert.Equal(2, shelf.Find("r")!.CommittedThrough);

        shelf.Begin(Request("r") with { MaxTokens = 9 }, Width);
        Assert.Equal(-1, shelf.Find("r")!.CommittedThrough);
        Assert.Equal(9, shelf.Find("r")!.Request.MaxTokens);
    }

    private static GenerationRequest Request(string id) => new() { RequestId = id, Deployment = "d", Prompt = [1, 2, 3], MaxTokens = 8 };

    private static KvSegment Segment(int position) => new(position, [.. Enumerable.Repeat((float)position, Width)], new float[Width], position);
}
