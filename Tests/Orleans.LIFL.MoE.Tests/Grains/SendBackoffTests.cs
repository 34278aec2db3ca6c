using Microsoft.Extensions.Time.Testing;
using Orleans.LIFL.Grains.MoE;
using Xunit;

namespace Orleans.LIFL.MoE.Tests.Grains;

public sealed class SendBackoffTests
{
    /// <summary>Ready at once until a failure; then after 50, 100, 200 ... ms, capped; a success makes it ready again.</summary>
    [Fact]
    public void Waits_double_with_each_failure_up_to_the_cap_and_a_success_resets_them()
    {
        var time = new FakeTimeProvider();
        var backoff = new SendBackoff(TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(300), time);
        Assert.True(backoff.Ready);

        var waits = new List<double>();
        for (var failure = 0; failure < 5; failure++)
        {
            backoff.Failed();
            Assert.False(backoff.Ready);
            time.Advance(backoff.Delay - TimeSpan.FromMilliseconds(1));
            Assert.False(backoff.Ready);
            time.Advance(TimeSpan.FromMilliseconds(1));
            Assert.True(backoff.Ready);
            waits.Add(backoff.Delay.TotalMilliseconds);
        }

        Assert.Equal([50, 100, 200, 300, 300], waits);
        backoff.Failed();
        backoff.Succeeded();
        Assert.True(backoff.Ready);
        backoff.Failed();
        Assert.Equal(TimeSpan.FromMilliseconds(50), backoff.Delay);
    }
}
