using Microsoft.Extensions.Time.Testing;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Grains.MoE;
using Xunit;

namespace Orleans.LIFL.MoE.Tests.Grains;

/// <summary>The requests one checkpoint store holds: begun, kept, replaced, and dropped when left alone too long.</summary>
public sealed class KvCheckpointShelfTests : IDisposable
{
    private const int Width = 4;

    private readonly SharedBufferPool _pool = SharedBufferPool.Acquire("t" + Guid.NewGuid().ToString("N")[..12], 16L << 20);

    public void Dispose() => _pool.Dispose();

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
        Assert.Equal(1, shelf.Touch("appended")!.Append(Segments(0, 2)));
        using (var checkpoint = shelf.Touch("restored")?.Checkpoint(_pool))
        {
            Assert.NotNull(checkpoint);
        }

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
        shelf.Touch("r")!.Append(Segments(0, 3));

        shelf.Begin(Request("r"), Width);
        Assert.Equal(2, shelf.Find("r")!.CommittedThrough);

        shelf.Begin(Request("r") with { MaxTokens = 9 }, Width);
        Assert.Equal(-1, shelf.Find("r")!.CommittedThrough);
        Assert.Equal(9, shelf.Find("r")!.Request.MaxTokens);
    }

    private static GenerationRequest Request(string id) => new() { RequestId = id, Deployment = "d", Prompt = [1, 2, 3], MaxTokens = 8 };

    /// <summary>
    /// The stored buffers go back to the pool when the shelf drops a request or is disposed, and a batch that adds
    /// nothing (resent, or leaving a gap) at once; a malformed one is refused and let go too.
    /// </summary>
    [Fact]
    public void Dropping_a_request_gives_its_bytes_back_to_the_pool()
    {
        var shelf = new KvCheckpointShelf(new FakeTimeProvider());
        shelf.Begin(Request("kept"), Width);
        shelf.Begin(Request("dropped"), Width);
        var baseline = _pool.GetStatistics().LiveBuffers;

        Assert.Equal(2, shelf.Touch("kept")!.Append(Segments(0, 3)));
        Assert.Equal(4, shelf.Touch("kept")!.Append(Segments(2, 3)));
        Assert.Equal(4, shelf.Touch("kept")!.Append(Segments(1, 2))); // nothing new
        Assert.Equal(4, shelf.Touch("kept")!.Append(Segments(6, 2))); // a gap
        Assert.Equal(1, shelf.Touch("dropped")!.Append(Segments(0, 2)));
        var malformed = new KvSegments(5, [1], _pool.Rent(KvSegments.BytesPerPosition(Width) + 4));
        Assert.Contains("come in", Assert.Throws<ArgumentException>(() => shelf.Touch("kept")!.Append(malformed)).Message);
        Assert.Equal(baseline + 3, _pool.GetStatistics().LiveBuffers);

        Assert.True(shelf.Drop("dropped"));
        Assert.Equal(baseline + 2, _pool.GetStatistics().LiveBuffers);
        shelf.Dispose();
        Assert.Equal(baseline, _pool.GetStatistics().LiveBuffers);
    }

    /// <summary>The committed prefix comes back in one buffer, every position's keys, values and output as sent, across the batches it came in.</summary>
    [Fact]
    public void The_checkpoint_is_the_prefix_as_sent()
    {
        using var shelf = new KvCheckpointShelf(new FakeTimeProvider());
        shelf.Begin(Request("r"), Width);
        var held = shelf.Touch("r")!;
        held.Append(Segments(0, 3));
        held.Append(Segments(1, 4));
        held.Append(Segments(5, 1));

        using var checkpoint = held.Checkpoint(_pool);
        var segments = checkpoint.Segments!;
        Assert.Equal((0, 6), (segments.From, segments.Count));
        using var expected = Segments(0, 6);
        Assert.Equal(expected.Outputs, segments.Outputs);
        Assert.True(expected.Bytes.Span.SequenceEqual(segments.Bytes.Span));
        Assert.Equal([2, 4, 5], held.Commits.Select(c => c.Through));
    }

    /// <summary>Positions <paramref name="from"/> onward, each position's floats and output derived from the position.</summary>
    private KvSegments Segments(int from, int count)
    {
        var segments = KvSegments.Rent(_pool, from, count, Width);
        for (var index = 0; index < count; index++)
        {
            var position = from + index;
            segments.Keys(index, Width).Fill(position);
            segments.Values(index, Width).Fill(-position - 0.5f);
            segments.Outputs[index] = position;
        }

        return segments;
    }
}
