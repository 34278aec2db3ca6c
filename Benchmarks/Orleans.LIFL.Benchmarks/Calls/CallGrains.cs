namespace Orleans.LIFL.Benchmarks.Calls;

public interface IPingGrain : IGrainWithIntegerKey
{
    ValueTask<int> Ping(int value);
}

public sealed class PingGrain : Grain, IPingGrain
{
    private int _calls;

    public ValueTask<int> Ping(int value)
    {
        _calls++;
        return new ValueTask<int>(value + 1);
    }
}
