using Orleans.LIFL.Grains.MoE.Model;
using Xunit;

namespace Orleans.LIFL.MoE.Tests;

public sealed class KvCacheTests
{
    private static readonly MoeConfig Config = new() { Layers = 2, ModelDim = 8, Heads = 2, Experts = 4, TopK = 2, FeedForwardDim = 8, MaxSequence = 150 };

    /// <summary>
    /// Room is taken a chunk of positions at a time as they are written, up to the configured sequence, and every
    /// position written before a growth reads back the same after it, in every layer.
    /// </summary>
    [Fact]
    public void Room_grows_by_chunks_and_keeps_what_was_written()
    {
        var cache = new KvCache(Config);
        Assert.Equal(0, cache.Capacity(0));
        for (var position = 0; position < Config.MaxSequence; position++)
        {
            for (var layer = 0; layer < Config.Layers; layer++)
            {
                cache.Write(layer, position, Row(layer, position, key: true), Row(layer, position, key: false));
                Assert.Equal(Math.Min(Config.MaxSequence, ((position / KvCache.Chunk) + 1) * KvCache.Chunk), cache.Capacity(layer));
            }
        }

        Assert.Equal(Config.MaxSequence, cache.Length);
        for (var layer = 0; layer < Config.Layers; layer++)
        {
            var keys = cache.Keys(layer, cache.Length);
            var values = cache.Values(layer, cache.Length);
            for (var position = 0; position < cache.Length; position++)
            {
                Assert.Equal(Row(layer, position, key: true), keys.Slice(position * Config.ModelDim, Config.ModelDim).ToArray());
                Assert.Equal(Row(layer, position, key: false), values.Slice(position * Config.ModelDim, Config.ModelDim).ToArray());
            }
        }

        var full = Assert.Throws<InvalidOperationException>(() => cache.Write(0, Config.MaxSequence, Row(0, 0, true), Row(0, 0, false)));
        Assert.Contains("full", full.Message, StringComparison.Ordinal);
    }

    /// <summary>A cache cut back (a restore behind the live state) is written on from the cut, keeping its room.</summary>
    [Fact]
    public void A_truncated_cache_is_written_again_from_the_cut()
    {
        var cache = new KvCache(Config);
        for (var position = 0; position < 70; position++)
        {
            cache.Write(0, position, Row(0, position, true), Row(0, position, false));
            cache.Write(1, position, Row(1, position, true), Row(1, position, false));
        }

        cache.Truncate(10);
        Assert.Throws<InvalidOperationException>(() => cache.Write(0, 70, Row(0, 70, true), Row(0, 70, false)));
        cache.Write(0, 10, Row(5, 5, true), Row(5, 5, false));
        cache.Write(1, 10, Row(6, 6, true), Row(6, 6, false));
        Assert.Equal(11, cache.Length);
        Assert.Equal(2 * KvCache.Chunk, cache.Capacity(1));
        Assert.Equal(Row(6, 6, true), cache.Keys(1, 11)[(10 * Config.ModelDim)..].ToArray());
        Assert.Equal(Row(0, 9, false), cache.Values(0, 10)[(9 * Config.ModelDim)..].ToArray());
    }

    /// <summary>
    /// A prefill writes every position of a layer before the next layer; a position only counts once its last layer
    /// holds it, and a layer may not run ahead of the one before it or skip a position.
    /// </summary>
    [Fact]
    public void Layers_are_written_in_order_position_by_position_or_layer_by_layer()
    {
        var cache = new KvCache(Config);
        for (var position = 0; position < 5; position++)
        {
            cache.Write(0, position, Row(0, position, true), Row(0, position, false));
        }

        Assert.Equal(0, cache.Length);
        var ahead = Assert.Throws<InvalidOperationException>(() => cache.Write(1, 1, Row(1, 1, true), Row(1, 1, false)));
        Assert.Contains("layer 1 is out of order: the layer holds 0", ahead.Message, StringComparison.Ordinal);
        for (var position = 0; position < 5; position++)
        {
            cache.Write(1, position, Row(1, position, true), Row(1, position, false));
        }

        Assert.Equal(5, cache.Length);
        var past = Assert.Throws<InvalidOperationException>(() => cache.Write(1, 5, Row(1, 5, true), Row(1, 5, false)));
        Assert.Contains("the layer before 5", past.Message, StringComparison.Ordinal);

        // A step that failed half-way (layer 0 of position 5 written) is forgotten by a truncation to what is whole.
        cache.Write(0, 5, Row(0, 5, true), Row(0, 5, false));
        cache.Truncate(cache.Length);
        cache.Write(0, 5, Row(7, 7, true), Row(7, 7, false));
        cache.Write(1, 5, Row(8, 8, true), Row(8, 8, false));
        Assert.Equal(Row(7, 7, true), cache.Keys(0, 6)[(5 * Config.ModelDim)..].ToArray());
    }

    private static float[] Row(int layer, int position, bool key) =>
        [.. Enumerable.Range(0, Config.ModelDim).Select(i => (key ? 1 : -1) * ((layer * 10000) + (position * 10) + i + 0.5f))];
}
