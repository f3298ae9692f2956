import pytest
from tests.dashboards.pages_support import send_demo_traffic, person

@pytest.mark.django_db
def test_smoke(ch, client, project, project_key, django_user_model):
    n = send_demo_traffic(client, project_key, spans=1500)
    print("sent", n)
    u = person(django_user_model, "eng", project, "engineer")
    client.force_login(u)
    import time
    for url in ["/finance/", "/engineering/", "/traces/", "/prices/", "/finance/report/"]:
        t=time.time(); r = client.get(url); print(url, r.status_code, round(time.time()-t,2), len(r.content))
        open("/tmp/page_"+url.strip("/").replace("/","_")+".html","wb").write(r.content)
        assert r.status_code == 200
