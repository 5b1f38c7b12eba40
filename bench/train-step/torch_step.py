# The same step in PyTorch: PlainConvUNet (dynamic_network_architectures layout) + DC_and_CE deep supervision,
# SGD(lr 1e-2, momentum 0.99, nesterov, wd 3e-5), clip_grad_norm_ 12. args as the C# side.
import sys, time, torch
from torch import nn
stages, base, batch, pz, py, px, warmup, steps, threads = map(int, sys.argv[1:10])
torch.set_num_threads(threads)
torch.manual_seed(0)
feats = [min(320, base << s) for s in range(stages)]

def block(cin, cout, stride):
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride, 1), nn.InstanceNorm3d(cout, eps=1e-5, affine=True), nn.LeakyReLU(0.01, inplace=True))

class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.ModuleList()
        cin = 1
        for s in range(stages):
            self.enc.append(nn.Sequential(block(cin, feats[s], 1 if s == 0 else 2), block(feats[s], feats[s], 1)))
            cin = feats[s]
        self.up, self.dec, self.seg = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for d in range(stages - 1):
            below, skip = feats[stages - 1 - d], feats[stages - 2 - d]
            self.up.append(nn.ConvTranspose3d(below, skip, 2, 2))
            self.dec.append(nn.Sequential(block(2 * skip, skip, 1), block(skip, skip, 1)))
            self.seg.append(nn.Conv3d(skip, 3, 1))
        for m in self.modules():
            if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)):
                nn.init.kaiming_normal_(m.weight, a=1e-2); nn.init.zeros_(m.bias)
    def forward(self, x):
        skips = []
        for e in self.enc:
            x = e(x); skips.append(x)
        lower, outs = skips[-1], []
        for d in range(stages - 1):
            x = self.dec[d](torch.cat([self.up[d](lower), skips[-(d + 2)]], 1))
            outs.append(self.seg[d](x)); lower = x
        return outs[::-1]

def dice_ce(logits, target):
    ce = nn.functional.cross_entropy(logits, target[:, 0].long())
    x = torch.softmax(logits, 1)
    with torch.no_grad():
        onehot = torch.zeros_like(x, dtype=torch.bool).scatter_(1, target.long(), 1)[:, 1:]
        sum_gt = onehot.sum((2, 3, 4))
    x = x[:, 1:]
    inter = (x * onehot).sum((2, 3, 4)); pred = x.sum((2, 3, 4))
    dc = (2 * inter + 1e-5) / torch.clip(sum_gt + pred + 1e-5, 1e-8)
    return ce - dc.mean()

net = UNet().train()
w = [1 / 2 ** i for i in range(stages - 1)]; w[-1] = 0; w = [v / sum(w) for v in w]
opt = torch.optim.SGD(net.parameters(), 1e-2, momentum=0.99, nesterov=True, weight_decay=3e-5)
data = torch.randn(batch, 1, pz, py, px)
target = torch.randint(0, 3, (batch, 1, pz, py, px))
times = []
for i in range(warmup + steps):
    t = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    outs = net(data)
    total = 0
    for k, o in enumerate(outs):
        if w[k] == 0: continue
        tk = target if o.shape[2:] == target.shape[2:] else nn.functional.interpolate(target.float(), o.shape[2:], mode='nearest-exact').long()
        total = total + w[k] * dice_ce(o, tk)
    total.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
    opt.step()
    total.item()
    if i >= warmup: times.append(time.perf_counter() - t)
times.sort()
print(f"pytorch median_step_s {times[len(times) // 2]:.4f} params {sum(p.numel() for p in net.parameters())} torch {torch.__version__}")
