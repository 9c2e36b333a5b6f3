"""Generate an example inventory with the shape of a real province (departments, districts, communes).

    python -m pipeline.coverage.province > config/inventory.province.yaml

Deterministic (no randomness), plausible Vietnamese names; ids are ASCII slugs of the names.
"""

from __future__ import annotations

import sys
import unicodedata
from typing import Any

import yaml

DEPARTMENTS = [
    "Văn phòng UBND tỉnh",
    "Sở Nội vụ",
    "Sở Tư pháp",
    "Sở Kế hoạch và Đầu tư",
    "Sở Tài chính",
    "Sở Công Thương",
    "Sở Nông nghiệp và Phát triển nông thôn",
    "Sở Giao thông vận tải",
    "Sở Xây dựng",
    "Sở Tài nguyên và Môi trường",
    "Sở Thông tin và Truyền thông",
    "Sở Lao động - Thương binh và Xã hội",
    "Sở Văn hóa, Thể thao và Du lịch",
    "Sở Khoa học và Công nghệ",
    "Sở Giáo dục và Đào tạo",
    "Sở Y tế",
    "Thanh tra tỉnh",
    "Ban Dân tộc",
    "Sở Ngoại vụ",
    "Ban Quản lý các Khu công nghiệp",
]
PUBLIC_SERVICE_UNITS = ["Trung tâm Phục vụ hành chính công tỉnh", "Trung tâm Công nghệ thông tin và Truyền thông"]
DISTRICTS = [
    "thành phố Long Xuyên",
    "thành phố Châu Đốc",
    "thị xã Tân Châu",
    "huyện An Phú",
    "huyện Phú Tân",
    "huyện Châu Phú",
    "huyện Tịnh Biên",
    "huyện Tri Tôn",
    "huyện Thoại Sơn",
]
COMMUNE_NAMES = [
    "Mỹ Bình",
    "Mỹ Long",
    "Mỹ Xuyên",
    "Bình Đức",
    "Bình Khánh",
    "Mỹ Phước",
    "Mỹ Quý",
    "Mỹ Thới",
    "Mỹ Thạnh",
    "Mỹ Hòa Hưng",
    "Vĩnh Mỹ",
    "Núi Sam",
    "Vĩnh Tế",
    "Vĩnh Châu",
    "Long Châu",
    "Long Phú",
    "Long Sơn",
    "Long An",
    "Phú Lộc",
    "Vĩnh Xương",
    "Vĩnh Hòa",
    "Tân An",
    "Tân Thạnh",
    "Châu Phong",
    "Phú Vĩnh",
    "Lê Chánh",
    "Long Thạnh",
    "Phú Hữu",
    "Khánh Bình",
    "Khánh An",
    "Quốc Thái",
    "Nhơn Hội",
    "Phú Hội",
    "Vĩnh Hậu",
    "Vĩnh Lộc",
    "Đa Phước",
    "Vĩnh Trường",
    "Phước Hưng",
    "Phú Thạnh",
    "Phú Thọ",
    "Phú Xuân",
    "Phú Bình",
    "Phú Long",
    "Phú Lâm",
    "Phú Thành",
    "Phú An",
    "Tân Hòa",
    "Tân Trung",
    "Hiệp Xương",
    "Bình Thạnh Đông",
    "Phú Hiệp",
    "Long Hòa",
    "Chợ Vàm",
    "Mỹ Đức",
    "Mỹ Phú",
    "Khánh Hòa",
    "Bình Chánh",
    "Bình Long",
    "Bình Mỹ",
    "Bình Phú",
    "Bình Thủy",
    "Đào Hữu Cảnh",
    "Ô Long Vỹ",
    "Thạnh Mỹ Tây",
    "Vĩnh Thạnh Trung",
    "Cái Dầu",
    "An Phú",
    "An Hảo",
    "An Cư",
    "An Nông",
    "Nhơn Hưng",
    "Núi Voi",
    "Tân Lợi",
    "Tân Lập",
    "Văn Giáo",
    "Vĩnh Trung",
    "Thới Sơn",
    "Chi Lăng",
    "Tịnh Biên",
    "Nhà Bàng",
    "Ba Chúc",
    "Châu Lăng",
    "Cô Tô",
    "Lạc Quới",
    "Lê Trì",
    "Lương An Trà",
    "Lương Phi",
    "Núi Tô",
    "Ô Lâm",
    "Tà Đảnh",
    "Tân Tuyến",
    "Vĩnh Gia",
    "Vĩnh Phước",
    "Tri Tôn",
    "Óc Eo",
    "Phú Hòa",
    "An Bình",
    "Bình Thành",
    "Định Mỹ",
    "Định Thành",
    "Mỹ Phú Đông",
    "Tây Phú",
    "Thoại Giang",
    "Vĩnh Chánh",
    "Vĩnh Khánh",
    "Vọng Đông",
    "Vọng Thê",
    "Vĩnh Phú",
    "Vĩnh Trạch",
    "Tân Phú",
    "Núi Sập",
    "Sơn Hòa",
    "Hòa Bình",
    "Hòa An",
    "Kiến An",
    "Kiến Thành",
    "Long Điền A",
    "Long Điền B",
    "Long Giang",
    "Long Kiến",
    "Mỹ An",
    "Mỹ Hiệp",
    "Mỹ Hội Đông",
    "Nhơn Mỹ",
    "Tấn Mỹ",
    "Hội An",
    "Chợ Mới",
    "Mỹ Luông",
    "Bình Phước Xuân",
    "Hòa Lạc",
    "Tân Phú Đông",
    "Phước Hiệp",
    "Phú Thuận",
    "Vĩnh Bình",
    "Thạnh Phú",
    "Vĩnh Nhuận",
    "Vĩnh Hanh",
    "Bình Hòa",
    "Cần Đăng",
    "Vĩnh An",
    "Tân Tây",
    "Tân Đông",
    "Hòa Hảo",
]
N_COMMUNES = 140


def slug(text: str) -> str:
    text = text.replace("Đ", "D").replace("đ", "d")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "-".join("".join(c if c.isalnum() else " " for c in ascii_text).split())


def _short(dept: str) -> str:
    return slug(dept.replace("Sở ", "so ").replace("Ban ", "ban ").replace("Văn phòng", "vp"))[:40]


def province_inventory() -> dict[str, Any]:
    def web(h: str) -> dict[str, str]:
        return {
            "name": "web",
            "path": "/var/log/nginx/access.log",
            "host": h,
            "dataset": "nginx.access",
            "silent_after": "1h",
        }

    auth = {"name": "auth", "path": "*auth.log", "dataset": "system.auth"}
    agencies: list[dict[str, Any]] = []
    for name in DEPARTMENTS:
        aid = _short(name)
        sources = [dict(auth), web(f"web-{aid}")]
        if name in ("Văn phòng UBND tỉnh", "Sở Thông tin và Truyền thông"):
            sources.append(
                {
                    "name": "mail",
                    "path": "/var/log/mail.log",
                    "host": f"mail-{aid}",
                    "dataset": "postfix",
                    "silent_after": "8h",
                }
            )  # mail is quiet at night
        agencies.append(
            {
                "id": aid,
                "name": name,
                "tier": "department",
                "parent": "ubnd-tinh",
                "contact": {"name": "Bộ phận CNTT", "email": f"cntt@{aid}.example.gov.vn"},
                "sources": sources,
            }
        )
    for name in PUBLIC_SERVICE_UNITS:
        aid = slug(name)[:40]
        agencies.append(
            {
                "id": aid,
                "name": name,
                "tier": "public_service_unit",
                "parent": "so-thong-tin-va-truyen-thong",
                "contact": {"name": "Phòng Kỹ thuật"},
                "sources": [dict(auth), web(f"web-{aid}")],
            }
        )
    district_ids = []
    for name in DISTRICTS:
        aid = "ubnd-" + slug(name)
        district_ids.append(aid)
        agencies.append(
            {
                "id": aid,
                "name": f"UBND {name}",
                "tier": "district",
                "parent": "ubnd-tinh",
                "contact": {"name": "Văn phòng HĐND và UBND", "email": f"vp@{slug(name)}.example.gov.vn"},
                "sources": [dict(auth), web(f"web-{aid}")],
            }
        )
    for i in range(N_COMMUNES):
        name = COMMUNE_NAMES[i % len(COMMUNE_NAMES)]
        kind = "phường" if i % 9 == 0 else ("thị trấn" if i % 13 == 0 else "xã")
        parent = district_ids[i % len(DISTRICTS)]
        aid = f"ubnd-{slug(kind)}-{slug(name)}"
        if any(a["id"] == aid for a in agencies):
            aid += f"-{i}"
        agencies.append(
            {
                "id": aid,
                "name": f"UBND {kind} {name}",
                "tier": "commune",
                "parent": parent,
                "contact": {"name": "Công chức Văn phòng - Thống kê"},
                "sources": [dict(auth)],
            }
        )
    return {"defaults": {"silent_after": "15m"}, "agencies": agencies}


def main() -> None:
    sys.stdout.write(
        "# Example inventory with the shape of a province: 20 departments, 2 public service units,\n"
        "# 9 districts, 140 communes. Generated by `python -m pipeline.coverage.province`.\n"
    )
    sys.stdout.write(yaml.safe_dump(province_inventory(), allow_unicode=True, sort_keys=False, width=120))


if __name__ == "__main__":
    main()
