namespace Orleans.LIFL.Grains.MoE.Model;

/// <summary>
/// A session's keys and values, per layer, for positions 0 .. <see cref="Length"/> − 1 (rotary positions already
/// applied to the keys). Each layer takes its positions in order, and a position only once the layer before holds it:
/// a step of one token writes its layers in turn, a step of several (a prefill) writes every position of a layer before
/// the next layer. <see cref="Truncate"/> drops the tail, as a restore from a checkpoint behind the live state does.
/// Room grows by <see cref="Chunk"/> positions as they are written instead of being taken for
/// <see cref="MoeConfig.MaxSequence"/> at once: a silo taking over sessions would otherwise allocate (zero, and fault
/// in page by page) each one's whole sequence in the takeover's stall — 4 MB per session of the benchmark's model for
/// the few dozen positions it restores.
/// </summary>
public sealed class KvCache
{
    /// <summary>Positions of room added at a time.</summary>
    public const int Chunk = 64;

    private readonly float[][] _keys;
    private readonly float[][] _values;
    private readonly int[] _lengths;
    private readonly int _width;

    public KvCache(MoeConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        Config = config.Validated();
        _width = config.ModelDim;
        _keys = [.. Enumerable.Range(0, config.Layers).Select(_ => Array.Empty<float>())];
        _values = [.. Enumerable.Range(0, config.Layers).Select(_ => Array.Empty<float>())];
        _lengths = new int[config.Layers];
    }

    public MoeConfig Config { get; }

    /// <summary>Positions held in every layer (a position's last layer written).</summary>
    public int Length => _lengths[^1];

    /// <summary>Writes position <paramref name="position"/> of <paramref name="layer"/>.</summary>
    public void Write(int layer, int position, ReadOnlySpan<float> key, ReadOnlySpan<float> value)
    {
        if (position >= Config.MaxSequence)
        {
            throw new InvalidOperationException($"The sequence is full: {Config.MaxSequence} positions.");
        }

        if (position != _lengths[layer] || (layer > 0 && position >= _lengths[layer - 1]))
        {
            throw new InvalidOperationException(
                $"Position {position} of layer {layer} is out of order: the layer holds {_lengths[layer]}"
                + (layer > 0 ? $" and the layer before {_lengths[layer - 1]}." : "."));
        }

        if (_keys[layer].Length < (position + 1) * _width)
        {
            var room = Math.Min(Config.MaxSequence, ((position / Chunk) + 1) * Chunk) * _width;
            Array.Resize(ref _keys[layer], room);
            Array.Resize(ref _values[layer], room);
        }

        key.CopyTo(_keys[layer].AsSpan(position * _width, _width));
        value.CopyTo(_values[layer].AsSpan(position * _width, _width));
        _lengths[layer]++;
    }

    /// <summary>Positions there is room for now, in <paramref name="layer"/>.</summary>
    public int Capacity(int layer) => _keys[layer].Length / _width;

    public ReadOnlySpan<float> Keys(int layer, int length) => _keys[layer].AsSpan(0, length * _width);

    public ReadOnlySpan<float> Values(int layer, int length) => _values[layer].AsSpan(0, length * _width);

    /// <summary>Forgets positions from <paramref name="length"/> on, in every layer (also those a step left half written).</summary>
    public void Truncate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, Length);
        Array.Fill(_lengths, length);
    }
}
