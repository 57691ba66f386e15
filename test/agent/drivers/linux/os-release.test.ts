import { strict as assert } from 'node:assert';
import { parseOsRelease, releaseFromOsRelease } from '../../../../agent/drivers/linux/os-release.js';

// This machine's /etc/os-release.
const DEBIAN12 = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
`;

describe('linux os-release parser', () => {
  it('reads quoted and unquoted values', () => {
    const f = parseOsRelease(DEBIAN12);
    assert.equal(f.ID, 'debian');
    assert.equal(f.VERSION_ID, '12');
    assert.equal(f.PRETTY_NAME, 'Debian GNU/Linux 12 (bookworm)');
    assert.equal(f.VERSION_CODENAME, 'bookworm');
  });

  it('spells the release "ID VERSION_ID"', () => {
    assert.equal(releaseFromOsRelease(parseOsRelease(DEBIAN12)), 'debian 12');
    assert.equal(releaseFromOsRelease(parseOsRelease('ID=ubuntu\nVERSION_ID="24.04"\n')), 'ubuntu 24.04');
    assert.equal(releaseFromOsRelease(parseOsRelease("ID='alpine'\nVERSION_ID=3.20.1\n")), 'alpine 3.20.1');
  });

  it('skips comments, blank lines and junk, and unescapes double-quoted values', () => {
    const f = parseOsRelease('# comment\n\nnot a line\nNAME="say \\"hi\\" \\$x"\n');
    assert.deepEqual(f, { NAME: 'say "hi" $x' });
  });

  it('falls back to VERSION_CODENAME when there is no VERSION_ID (Debian testing)', () => {
    assert.equal(releaseFromOsRelease(parseOsRelease('ID=debian\nVERSION_CODENAME=trixie\n')), 'debian trixie');
    assert.equal(releaseFromOsRelease(parseOsRelease('ID=arch\nBUILD_ID=rolling\n')), 'arch rolling');
  });

  it('has no release for an empty file', () => {
    assert.equal(releaseFromOsRelease(parseOsRelease('')), undefined);
  });
});
