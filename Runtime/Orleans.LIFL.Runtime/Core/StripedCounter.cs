using System.Runtime.InteropServices;

namespace Orleans.LIFL.Runtime.Core;

/// <summary>
/// A counter incremented on hot paths by many threads: each processor adds to its own cache line, so increments do
/// not contend; reading sums the stripes.
/// </summary>
internal sealed class StripedCounter
{
    private readonly PaddedLong[] _stripes = new PaddedLong[Math.Max(1, Environment.ProcessorCount) * 2];

    public void Increment()
    {
        var index = Thread.GetCurrentProcessorId() % _stripes.Length;
        Interlocked.Increment(ref _stripes[index].Value);
    }

    public long Value
    {
        get
        {
            long sum = 0;
            for (var i = 0; i < _stripes.Length; i++)
            {
                sum += Volatile.Read(ref _stripes[i].Value);
            }

            return sum;
        }
    }

    [StructLayout(LayoutKind.Explicit, Size = 128)]
    private struct PaddedLong
    {
        [FieldOffset(64)]
        public long Value;
    }
}
